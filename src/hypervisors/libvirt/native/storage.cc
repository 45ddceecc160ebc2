// Storage pools and volumes. As with domains, no libvirt handle reaches
// JavaScript: a pool is named by its name, a volume by its key (for a
// directory pool, its path). Each job looks the object up on the worker,
// acts, and frees the handle.
//
// Uploads and downloads move data through a libvirt stream for as long as
// the volume takes, so they run on a thread of their own (side-thread.h):
// the connection's worker keeps answering other calls meanwhile, and the
// JavaScript thread never touches the data.
#include <libvirt/libvirt.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connection.h"
#include "convert.h"
#include "errors.h"
#include "handles.h"
#include "named-object.h"
#include "names.h"
#include "side-thread.h"

namespace virtfleet {

namespace {

struct VolIdentity {
  std::string name;
  std::string key;
  std::string path;
};

VolIdentity VolIdentityOf(virStorageVolPtr vol) {
  const char* name = virStorageVolGetName(vol);
  if (name == nullptr) ThrowLastError("virStorageVolGetName");
  const char* key = virStorageVolGetKey(vol);
  if (key == nullptr) ThrowLastError("virStorageVolGetKey");
  CString path(virStorageVolGetPath(vol));
  if (!path) ThrowLastError("virStorageVolGetPath");
  return {name, key, path.get()};
}

Napi::Object ToJs(Napi::Env env, const VolIdentity& vol) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", vol.name);
  out.Set("key", vol.key);
  out.Set("path", vol.path);
  return out;
}

struct Pool {
  using Ptr = virStoragePoolPtr;
  using Handle = StoragePoolHandle;
  using Identity = NamedIdentity;
  static constexpr const char* kKeyArg = "name";
  static constexpr auto lookup = LIBVIRT_CALL(virStoragePoolLookupByName);
  static constexpr auto listAll = LIBVIRT_CALL(virConnectListAllStoragePools);
  static constexpr auto defineXML = LIBVIRT_CALL(virStoragePoolDefineXML);
  static constexpr unsigned int kDefineValidate = VIR_STORAGE_POOL_DEFINE_VALIDATE;
  static constexpr auto create = LIBVIRT_CALL(virStoragePoolCreate);
  static constexpr auto destroy = LIBVIRT_CALL(virStoragePoolDestroy);
  static constexpr auto undefine = LIBVIRT_CALL(virStoragePoolUndefine);
  static constexpr auto getAutostart = LIBVIRT_CALL(virStoragePoolGetAutostart);
  static constexpr auto setAutostart = LIBVIRT_CALL(virStoragePoolSetAutostart);
  static constexpr auto isActive = LIBVIRT_CALL(virStoragePoolIsActive);
  static constexpr auto isPersistent = LIBVIRT_CALL(virStoragePoolIsPersistent);
  static constexpr auto getXMLDesc = LIBVIRT_CALL(virStoragePoolGetXMLDesc);
  static constexpr unsigned int kXMLInactive = VIR_STORAGE_XML_INACTIVE;
  static constexpr auto getName = LIBVIRT_CALL(virStoragePoolGetName);
  static constexpr auto getUUIDString = LIBVIRT_CALL(virStoragePoolGetUUIDString);
  static NamedIdentity IdentityOf(virStoragePoolPtr pool) { return NamedIdentityOf<Pool>(pool); }
};

// A volume, named by its key.
struct Vol {
  using Ptr = virStorageVolPtr;
  using Handle = StorageVolHandle;
  using Identity = VolIdentity;
  static constexpr const char* kKeyArg = "key";
  static constexpr auto lookup = LIBVIRT_CALL(virStorageVolLookupByKey);
  static VolIdentity IdentityOf(virStorageVolPtr vol) { return VolIdentityOf(vol); }
};

// ---- streams: upload and download (side thread, blocking stream) ----

struct Transfer {
  std::FILE* file = nullptr;            // a file, or
  const std::vector<char>* in = nullptr;  // a copy of the caller's Buffer (upload)
  std::string* out = nullptr;           // the bytes received (download to memory)
  std::size_t offset = 0;               // read position in `in`
  uint64_t bytes = 0;                   // moved so far
  std::optional<LibvirtError> error;    // our own failure, reported instead of libvirt's
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File OpenFile(const std::string& path, const char* mode) {
  File f(std::fopen(path.c_str(), mode));
  if (!f) {
    throw MakeError(VIR_ERR_SYSTEM_ERROR,
                    "cannot open '" + path + "': " + std::strerror(errno));
  }
  return f;
}

int Source(virStreamPtr, char* data, std::size_t nbytes, void* opaque) {
  auto& t = *static_cast<Transfer*>(opaque);
  std::size_t n;
  if (t.file != nullptr) {
    n = std::fread(data, 1, nbytes, t.file);
    if (n == 0 && std::ferror(t.file)) {
      t.error = MakeError(VIR_ERR_SYSTEM_ERROR, std::string("read failed: ") + std::strerror(errno));
      return -1;
    }
  } else {
    n = std::min(nbytes, t.in->size() - t.offset);
    std::memcpy(data, t.in->data() + t.offset, n);
    t.offset += n;
  }
  t.bytes += n;
  return static_cast<int>(n);
}

int Sink(virStreamPtr, const char* data, std::size_t nbytes, void* opaque) {
  auto& t = *static_cast<Transfer*>(opaque);
  if (t.file != nullptr) {
    if (std::fwrite(data, 1, nbytes, t.file) != nbytes) {
      t.error = MakeError(VIR_ERR_SYSTEM_ERROR, std::string("write failed: ") + std::strerror(errno));
      return -1;
    }
  } else {
    t.out->append(data, nbytes);
  }
  t.bytes += nbytes;
  return static_cast<int>(nbytes);
}

// Runs the stream to its end: SendAll or RecvAll, then Finish. On failure
// the stream is aborted (SendAll/RecvAll do it themselves) and the first
// error wins: ours (a file that cannot be read) before libvirt's.
void RunStream(virStreamPtr st, Transfer& t, bool upload) {
  int rc = upload ? virStreamSendAll(st, Source, &t) : virStreamRecvAll(st, Sink, &t);
  if (rc < 0) {
    LibvirtError libvirtError = TakeLastError(upload ? "virStreamSendAll" : "virStreamRecvAll");
    throw t.error ? *t.error : libvirtError;
  }
  if (virStreamFinish(st) < 0) ThrowLastError("virStreamFinish");
}

struct Range {
  uint64_t offset = 0;
  uint64_t length = 0;  // 0: to the end
};

Range RangeOptions(const Napi::Object& options) {
  return {UnsignedOption(options, "offset").value_or(0), UnsignedOption(options, "length").value_or(0)};
}

}  // namespace

// ---- pools ----

// listStoragePools() -> Promise<[{ name, uuid, active, persistent, autostart }]>
Napi::Value Connection::ListStoragePools(const Napi::CallbackInfo& info) {
  return Run(info, ListAllJob<Pool>);
}

// lookupStoragePoolByName(name) -> Promise<{ name, uuid }>
Napi::Value Connection::LookupStoragePoolByName(const Napi::CallbackInfo& info) {
  return Run(info, LookupJob<Pool>);
}

// storagePoolDefineXML(xml, { validate? }) -> Promise<{ name, uuid }>
Napi::Value Connection::StoragePoolDefineXML(const Napi::CallbackInfo& info) {
  return Run(info, DefineXMLJob<Pool>);
}

// storagePoolBuild(name, { overwrite?, noOverwrite? }): makes the pool's
// storage (for a directory pool, the directory).
Napi::Value Connection::StoragePoolBuild(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    Napi::Object options = OptionsArg(info, 1);
    unsigned int flags = VIR_STORAGE_POOL_BUILD_NEW;
    if (BoolOption(options, "overwrite")) flags |= VIR_STORAGE_POOL_BUILD_OVERWRITE;
    if (BoolOption(options, "noOverwrite")) flags |= VIR_STORAGE_POOL_BUILD_NO_OVERWRITE;
    return Submit(info.Env(), Act<Pool>(name, LIBVIRT_CALL(virStoragePoolBuild), flags));
  });
}

// storagePoolCreate(name, { build?, overwrite?, noOverwrite? }): starts a
// defined pool, building it first when asked.
Napi::Value Connection::StoragePoolCreate(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    Napi::Object options = OptionsArg(info, 1);
    unsigned int flags = 0;
    if (BoolOption(options, "build")) flags |= VIR_STORAGE_POOL_CREATE_WITH_BUILD;
    if (BoolOption(options, "overwrite")) flags |= VIR_STORAGE_POOL_CREATE_WITH_BUILD_OVERWRITE;
    if (BoolOption(options, "noOverwrite")) {
      flags |= VIR_STORAGE_POOL_CREATE_WITH_BUILD_NO_OVERWRITE;
    }
    return Submit(info.Env(), Act<Pool>(name, Pool::create, flags));
  });
}

Napi::Value Connection::StoragePoolDestroy(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Pool>(Pool::destroy));
}

Napi::Value Connection::StoragePoolUndefine(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Pool>(Pool::undefine));
}

// storagePoolDelete(name): removes the (inactive) pool's storage, e.g. its
// directory; the opposite of build.
Napi::Value Connection::StoragePoolDelete(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Pool>(LIBVIRT_CALL(virStoragePoolDelete), VIR_STORAGE_POOL_DELETE_NORMAL));
}

Napi::Value Connection::StoragePoolRefresh(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Pool>(LIBVIRT_CALL(virStoragePoolRefresh), 0u));
}

// storagePoolGetInfo(name) -> Promise<{ state, stateCode, capacity,
// allocation, available }> (bytes, exact up to 2^53)
Napi::Value Connection::StoragePoolGetInfo(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    return Submit(info.Env(), On<Pool>(name, [](virStoragePoolPtr pool) -> Reply {
                    virStoragePoolInfo pi;
                    if (virStoragePoolGetInfo(pool, &pi) < 0) ThrowLastError("virStoragePoolGetInfo");
                    return [pi](Napi::Env env) -> Napi::Value {
                      Napi::Object out = Napi::Object::New(env);
                      out.Set("state", kStoragePoolState.Find(pi.state));
                      out.Set("stateCode", pi.state);
                      out.Set("capacity", static_cast<double>(pi.capacity));
                      out.Set("allocation", static_cast<double>(pi.allocation));
                      out.Set("available", static_cast<double>(pi.available));
                      return out;
                    };
                  }));
  });
}

// storagePoolGetXMLDesc(name, { inactive? }) -> Promise<string>
Napi::Value Connection::StoragePoolGetXMLDesc(const Napi::CallbackInfo& info) {
  return Run(info, XMLDescJob<Pool>);
}

Napi::Value Connection::StoragePoolSetAutostart(const Napi::CallbackInfo& info) {
  return Run(info, SetAutostartJob<Pool>);
}

// storagePoolListVolumes(name) -> Promise<[{ name, key, path }]>
Napi::Value Connection::StoragePoolListVolumes(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string name = StringArg(info, 0, "name");
    return Submit(info.Env(), On<Pool>(name, [](virStoragePoolPtr pool) -> Reply {
                    virStorageVolPtr* raw = nullptr;
                    int count = Check(LIBVIRT_CALL(virStoragePoolListAllVolumes), pool, &raw, 0u);
                    std::vector<StorageVolHandle> vols = TakeList<StorageVolHandle>(raw, count);
                    std::vector<VolIdentity> out;
                    for (StorageVolHandle& vol : vols) out.push_back(VolIdentityOf(vol.get()));
                    return [out = std::move(out)](Napi::Env env) -> Napi::Value {
                      Napi::Array list = Napi::Array::New(env, out.size());
                      for (std::size_t i = 0; i < out.size(); i++) {
                        list.Set(static_cast<uint32_t>(i), ToJs(env, out[i]));
                      }
                      return list;
                    };
                  }));
  });
}

// ---- volumes ----

static unsigned int VolCreateFlags(const Napi::Object& options) {
  unsigned int flags = 0;
  if (BoolOption(options, "preallocateMetadata")) flags |= VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA;
  if (BoolOption(options, "reflink")) flags |= VIR_STORAGE_VOL_CREATE_REFLINK;
  if (BoolOption(options, "validate")) flags |= VIR_STORAGE_VOL_CREATE_VALIDATE;
  return flags;
}

// storageVolCreateXML(pool, xml, { preallocateMetadata?, validate? })
//   -> Promise<{ name, key, path }>
Napi::Value Connection::StorageVolCreateXML(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string pool = StringArg(info, 0, "pool");
    std::string xml = StringArg(info, 1, "xml");
    unsigned int flags = VolCreateFlags(OptionsArg(info, 2));
    return Submit(info.Env(), On<Pool>(pool, [xml, flags](virStoragePoolPtr p) -> Reply {
                    StorageVolHandle vol(virStorageVolCreateXML(p, xml.c_str(), flags));
                    if (!vol) ThrowLastError("virStorageVolCreateXML");
                    return IdentityReply(VolIdentityOf(vol.get()));
                  }));
  });
}

// storageVolCreateXMLFrom(pool, xml, sourceKey, { ... }) -> Promise<{ name, key, path }>:
// a new volume in `pool` with the contents of the volume `sourceKey` (a clone).
Napi::Value Connection::StorageVolCreateXMLFrom(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string pool = StringArg(info, 0, "pool");
    std::string xml = StringArg(info, 1, "xml");
    std::string sourceKey = StringArg(info, 2, "sourceKey");
    unsigned int flags = VolCreateFlags(OptionsArg(info, 3));
    return Submit(info.Env(), [pool, xml, sourceKey, flags](Session& session) -> Reply {
      virConnectPtr conn = RequireConnection(session);
      StoragePoolHandle p = Lookup<Pool>(conn, pool);
      StorageVolHandle source = Lookup<Vol>(conn, sourceKey);
      StorageVolHandle vol(virStorageVolCreateXMLFrom(p.get(), xml.c_str(), source.get(), flags));
      if (!vol) ThrowLastError("virStorageVolCreateXMLFrom");
      return IdentityReply(VolIdentityOf(vol.get()));
    });
  });
}

Napi::Value Connection::LookupStorageVolByKey(const Napi::CallbackInfo& info) {
  return Run(info, LookupJob<Vol>);
}

Napi::Value Connection::LookupStorageVolByName(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string pool = StringArg(info, 0, "pool");
    std::string name = StringArg(info, 1, "name");
    return Submit(info.Env(), On<Pool>(pool, [name](virStoragePoolPtr p) -> Reply {
                    StorageVolHandle vol(virStorageVolLookupByName(p, name.c_str()));
                    if (!vol) ThrowLastError("virStorageVolLookupByName");
                    return IdentityReply(VolIdentityOf(vol.get()));
                  }));
  });
}

Napi::Value Connection::LookupStorageVolByPath(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string path = StringArg(info, 0, "path");
    return Submit(info.Env(), [path](Session& session) -> Reply {
      StorageVolHandle vol(virStorageVolLookupByPath(RequireConnection(session), path.c_str()));
      if (!vol) ThrowLastError("virStorageVolLookupByPath");
      return IdentityReply(VolIdentityOf(vol.get()));
    });
  });
}

Napi::Value Connection::StorageVolDelete(const Napi::CallbackInfo& info) {
  return Run(info, ActOn<Vol>(LIBVIRT_CALL(virStorageVolDelete), 0u));
}

// storageVolGetInfo(key) -> Promise<{ type, typeCode, capacity, allocation }> (bytes)
Napi::Value Connection::StorageVolGetInfo(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string key = StringArg(info, 0, "key");
    return Submit(info.Env(), On<Vol>(key, [](virStorageVolPtr vol) -> Reply {
                    virStorageVolInfo vi;
                    if (virStorageVolGetInfo(vol, &vi) < 0) ThrowLastError("virStorageVolGetInfo");
                    return [vi](Napi::Env env) -> Napi::Value {
                      Napi::Object out = Napi::Object::New(env);
                      out.Set("type", kStorageVolType.Find(vi.type));
                      out.Set("typeCode", vi.type);
                      out.Set("capacity", static_cast<double>(vi.capacity));
                      out.Set("allocation", static_cast<double>(vi.allocation));
                      return out;
                    };
                  }));
  });
}

Napi::Value Connection::StorageVolGetPath(const Napi::CallbackInfo& info) {
  return Run(info, [](const Napi::CallbackInfo& info) {
    return Text<Vol>(KeyArg<Vol>(info), LIBVIRT_CALL(virStorageVolGetPath));
  });
}

Napi::Value Connection::StorageVolGetXMLDesc(const Napi::CallbackInfo& info) {
  return Run(info, [](const Napi::CallbackInfo& info) {
    return Text<Vol>(KeyArg<Vol>(info), LIBVIRT_CALL(virStorageVolGetXMLDesc), 0u);
  });
}

// storageVolResize(key, capacity, { allocate?, delta?, shrink? })
Napi::Value Connection::StorageVolResize(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string key = StringArg(info, 0, "key");
    Napi::Object sizes = Napi::Object::New(info.Env());
    sizes.Set("capacity", info.Length() > 1 ? info[1] : info.Env().Undefined());
    std::optional<uint64_t> capacity = UnsignedOption(sizes, "capacity");
    if (!capacity) throw Napi::TypeError::New(info.Env(), "capacity must be a number");
    Napi::Object options = OptionsArg(info, 2);
    unsigned int flags = 0;
    if (BoolOption(options, "allocate")) flags |= VIR_STORAGE_VOL_RESIZE_ALLOCATE;
    if (BoolOption(options, "delta")) flags |= VIR_STORAGE_VOL_RESIZE_DELTA;
    if (BoolOption(options, "shrink")) flags |= VIR_STORAGE_VOL_RESIZE_SHRINK;
    uint64_t bytes = *capacity;
    return Submit(info.Env(), Act<Vol>(key, LIBVIRT_CALL(virStorageVolResize), bytes, flags));
  });
}

// storageVolUpload(key, source, { offset?, length? }) -> Promise<number>:
// writes `source` (a Buffer, copied at the call, or the path of a local file
// read on the transfer thread) into the volume through a libvirt stream;
// resolves with the number of bytes sent.
Napi::Value Connection::StorageVolUpload(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string key = StringArg(info, 0, "key");
    std::shared_ptr<std::vector<char>> data;
    std::optional<std::string> file;
    if (info.Length() > 1 && info[1].IsBuffer()) {
      auto buffer = info[1].As<Napi::Buffer<char>>();
      data = std::make_shared<std::vector<char>>(buffer.Data(), buffer.Data() + buffer.Length());
    } else if (info.Length() > 1 && info[1].IsString()) {
      file = StringArg(info, 1, "source");
    } else {
      throw Napi::TypeError::New(info.Env(), "source must be a Buffer or a file path");
    }
    Range range = RangeOptions(OptionsArg(info, 2));
    return Submit(info.Env(), OnSideThread([key, data, file, range](virConnectPtr conn) -> Reply {
                    StorageVolHandle vol = Lookup<Vol>(conn, key);
                    Transfer t;
                    File f;
                    if (file) {
                      f = OpenFile(*file, "rb");
                      t.file = f.get();
                    } else {
                      t.in = data.get();
                    }
                    StreamHandle st(virStreamNew(conn, 0));
                    if (!st) ThrowLastError("virStreamNew");
                    if (virStorageVolUpload(vol.get(), st.get(), range.offset, range.length, 0) < 0) {
                      ThrowLastError("virStorageVolUpload");
                    }
                    RunStream(st.get(), t, true);
                    double bytes = static_cast<double>(t.bytes);
                    return [bytes](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, bytes); };
                  }));
  });
}

// storageVolDownload(key, { file?, offset?, length? }) -> Promise<Buffer | number>:
// reads the volume through a libvirt stream into a new local file `file`
// (resolving with the number of bytes written) or, without one, into a
// Buffer.
Napi::Value Connection::StorageVolDownload(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string key = StringArg(info, 0, "key");
    Napi::Object options = OptionsArg(info, 1);
    std::optional<std::string> file = StringOption(options, "file");
    Range range = RangeOptions(options);
    return Submit(info.Env(), OnSideThread([key, file, range](virConnectPtr conn) -> Reply {
                    StorageVolHandle vol = Lookup<Vol>(conn, key);
                    Transfer t;
                    File f;
                    auto received = std::make_shared<std::string>();
                    if (file) {
                      f = OpenFile(*file, "wb");
                      t.file = f.get();
                    } else {
                      t.out = received.get();
                    }
                    StreamHandle st(virStreamNew(conn, 0));
                    if (!st) ThrowLastError("virStreamNew");
                    if (virStorageVolDownload(vol.get(), st.get(), range.offset, range.length, 0) < 0) {
                      ThrowLastError("virStorageVolDownload");
                    }
                    RunStream(st.get(), t, false);
                    if (f && std::fclose(f.release()) != 0) {
                      throw MakeError(VIR_ERR_SYSTEM_ERROR,
                                      std::string("write failed: ") + std::strerror(errno));
                    }
                    double bytes = static_cast<double>(t.bytes);
                    bool toFile = file.has_value();
                    return [bytes, toFile, received](Napi::Env env) -> Napi::Value {
                      if (toFile) return Napi::Number::New(env, bytes);
                      return Napi::Buffer<char>::Copy(env, received->data(), received->size());
                    };
                  }));
  });
}

}  // namespace virtfleet
