{
  "targets": [
    {
      "target_name": "cohort_native",
      "sources": ["native/addon.cc", "native/ops.cc", "native/optim.cc", "native/model_ops.cc", "native/dist.cc", "native/quant.cc", "native/linalg.cc", "native/checkpoint.cc"],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include_dir\")", "<!@(node scripts/libtorch.mjs include)"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "<!@(node scripts/libtorch.mjs defines)"],
      "cflags!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "libraries": ["<!@(node scripts/libtorch.mjs libs)"]
    }
  ]
}
