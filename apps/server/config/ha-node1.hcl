# Two-node HA, node 1 of 2 (the README's "Two-node HA on Consul" walkthrough; ha-node2.hcl is the
# other node): both nodes share one Consul KV path and one KMS key. Whichever node takes Consul's
# session lock first is active; the other auto-unseals, answers reads, forwards writes to the
# active node's api_addr, and takes over when the active node goes away.
#
#   bulwark server -config apps/server/config/ha-node1.hcl      (from a clone: pnpm exec bulwark …)
#
# Needs a Consul agent on 127.0.0.1:8500 and an AWS KMS endpoint (here the local-kms emulator on
# 127.0.0.1:4599 with the alias alias/bulwark; for AWS itself drop `endpoint` and name your key).
# Credentials come from the usual AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, a role).

storage "consul" {
  address = "127.0.0.1:8500"
  path    = "bulwark-ha/"
}

seal "awskms" {
  region     = "us-east-1"
  kms_key_id = "alias/bulwark"
  endpoint   = "http://127.0.0.1:4599"
}

listener "tcp" {
  address     = "127.0.0.1:8251"
  tls_disable = true
}

# The address this node advertises while it is active: where the other node forwards writes. Set it
# on every node of an HA cluster, to an address the other nodes can reach.
api_addr = "http://127.0.0.1:8251"
