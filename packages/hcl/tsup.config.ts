import { libraryConfig } from "../../tooling/tsconfig/tsup.base.js";

export default libraryConfig(["src/index.ts"]);
