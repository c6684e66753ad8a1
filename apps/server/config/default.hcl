# Bulwark's embedded default (`pnpm start`): file storage in ./data (relative to the directory you
# start it from), Shamir key shares (no seal block), plain HTTP on localhost only.
#
#   bulwark server -config apps/server/config/default.hcl      (from a clone: pnpm exec bulwark …)
#
# Then, in another shell: export BULWARK_ADDR=http://127.0.0.1:8200 && bulwark operator init
# and `bulwark operator unseal` with three of the five keys it prints.

storage "file" {
  path = "./data"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
