export * from "./hcl.js";
