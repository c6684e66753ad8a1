{
  "targets": [
    {
      "target_name": "unixgram",
      "sources": ["unixgram.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
