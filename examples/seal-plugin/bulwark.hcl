# A bulwark server that auto-unseals with this plugin. Install the plugin where this file lives
# (npm install @acme/bulwark-seal-keyfile), create the key once (umask 077; openssl rand -hex 32 >
# /etc/bulwark/seal.key), then: bulwark server -config bulwark.hcl
storage "file" {
  path = "/var/lib/bulwark"
}

seal "keyfile" {
  plugin = "@acme/bulwark-seal-keyfile"     # resolved from this file's directory upwards, then the working directory
  key_file = "/etc/bulwark/seal.key"        # or leave it out and set KEYFILE_SEAL_KEY_FILE
  # previous_key_files = ["/etc/bulwark/seal-2025.key"]   # after a rotation, until everything is rewrapped
}

listener "tcp" {
  address = "127.0.0.1:8200"
  tls_disable = true
}
