# Builds the project's libvirt binding: `npm run build:native` (node-gyp rebuild)
# -> build/Release/virtfleet_libvirt.node. Needs Debian's libvirt-dev, pkg-config
# and g++ at build time, and only libvirt0 at run time.
{
  "targets": [
    {
      "target_name": "virtfleet_libvirt",
      "sources": [
        "src/hypervisors/libvirt/native/module.cc",
        "src/hypervisors/libvirt/native/event-loop.cc",
        "src/hypervisors/libvirt/native/errors.cc",
        "src/hypervisors/libvirt/native/worker.cc",
        "src/hypervisors/libvirt/native/session.cc",
        "src/hypervisors/libvirt/native/events.cc",
        "src/hypervisors/libvirt/native/connection.cc",
        "src/hypervisors/libvirt/native/host.cc",
        "src/hypervisors/libvirt/native/domain.cc",
        "src/hypervisors/libvirt/native/migration.cc",
        "src/hypervisors/libvirt/native/guest.cc",
        "src/hypervisors/libvirt/native/stats.cc",
        "src/hypervisors/libvirt/native/storage.cc",
        "src/hypervisors/libvirt/native/network.cc",
        "src/hypervisors/libvirt/native/snapshot.cc",
        "src/hypervisors/libvirt/native/console.cc",
        "src/hypervisors/libvirt/native/params.cc",
        "src/hypervisors/libvirt/native/convert.cc",
        "src/hypervisors/libvirt/native/names.cc",
        "src/hypervisors/libvirt/native/names-lookup.cc"
      ],
      # C++ exceptions carry libvirt errors out of worker jobs; node-addon-api's
      # "except" target turns them on and defines NAPI_CPP_EXCEPTIONS.
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-std=gnu++17"],
      "include_dirs": ["<!@(pkg-config --cflags-only-I libvirt libvirt-qemu | sed 's/-I//g')"],
      # libvirt-qemu: virDomainQemuAgentCommand (guest-agent commands).
      "libraries": ["<!@(pkg-config --libs libvirt libvirt-qemu)"]
    }
  ]
}
