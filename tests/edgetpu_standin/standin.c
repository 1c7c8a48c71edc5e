/* A stand-in for libedgetpu.so.1 (the Edge TPU runtime), for tests on machines without a Coral.
 *
 * It exports what the real library exports and edgekit uses:
 *   - the TFLite external-delegate ABI: tflite_plugin_create_delegate /
 *     tflite_plugin_destroy_delegate (tensorflow/lite/delegates/external);
 *   - libedgetpu's C API: edgetpu_version() and edgetpu_list_devices() / edgetpu_free_devices().
 *
 * Like the real delegate, it claims every `edgetpu-custom-op` node of the graph (what
 * edgetpu_compiler produced) and leaves every other node to the CPU interpreter; an uncompiled
 * model therefore runs entirely on the CPU. The claimed node computes nothing: its outputs keep
 * whatever the tensor arena holds (zeros on a fresh arena). That is enough to allocate and invoke
 * a compiled model, which is all a probe, doctor or a crash test needs.
 *
 * Behaviour is chosen at build time with -DSTANDIN_MODE=<n> (see the MODE_* values), so each
 * failure is its own library file, as on a real machine:
 *   WORKS     a healthy library and an attached USB Accelerator;
 *   NULL      tflite_plugin_create_delegate returns NULL (no device / no permission / busy);
 *   SEGV      dereferences NULL in the delegate's Prepare (the TF-version ABI mismatch of
 *             Google's TF 2.5 build inside a newer interpreter);
 *   HANG      blocks forever in Prepare (a wedged device);
 *   ABORT     prints libedgetpu's "USB transfer error 5" fatal log line and abort()s in Invoke
 *             (what a second process opening the same Edge TPU does to the first).
 * Environment variables (read when the delegate is created):
 *   EDGETPU_STANDIN_CRASH_AFTER=N  (any mode) the N+1th invoke of a claimed node in this process
 *                                  dies by SIGSEGV: a worker that crashes after N inferences.
 *   EDGETPU_STANDIN_HANG_AFTER=N   the N+1th invoke blocks forever instead.
 *   EDGETPU_STANDIN_ABORT_AFTER=N  the N+1th invoke prints the ABORT mode's fatal log line and
 *                                  abort()s: a worker whose Coral another process took mid-stream.
 *   EDGETPU_STANDIN_LOG=PATH       append one line per create/prepare/invoke/destroy (tests count
 *                                  what happened in a child that died).
 *   EDGETPU_STANDIN_WEDGE=PATH     a wedged device while PATH exists: the delegate cannot be
 *                                  created (NULL, "Failed to load delegate") and every invoke
 *                                  fails (kTfLiteError); a USB reset (the test's fake kernel)
 *                                  removes PATH, as a real reset unwedges the Coral.
 *   EDGETPU_STANDIN_SYSFS=DIR      the fake sysfs device of the stick: creating a delegate on a
 *                                  1a6e:089a device "uploads the firmware" and re-enumerates it
 *                                  as 18d1:9302 with the next device number, as the real one;
 *                                  with EDGETPU_STANDIN_DEVFS=<root>/dev/bus/usb its usbfs node
 *                                  moves to the new number too.
 *   EDGETPU_STANDIN_INVOKE_MS=X    each invoke of a claimed node sleeps X ms (a fractional value is
 *                                  fine): the Edge TPU's own time, during which the calling thread
 *                                  waits on USB and uses no CPU (benchmarks of the device-bound case).
 *   EDGETPU_STANDIN_DEVICES=N      N USB Accelerators are attached (default 1): edgetpu_list_devices
 *                                  lists N, and a delegate asked for "usb:K" / ":K" with K >= N is
 *                                  not created (NULL, as libedgetpu does for an absent device).
 *   EDGETPU_STANDIN_CRASH_DEVICE=D CRASH_AFTER/HANG_AFTER apply only to a delegate created with the
 *                                  option device=D (e.g. usb:1): one Coral of several fails.
 *   EDGETPU_STANDIN_TRACE=PATH     append "<pid> <device> begin|end <CLOCK_MONOTONIC ns>" around each
 *                                  invoke of a claimed node (tests see two devices busy at once).
 * -DRUNTIME_VERSION=<n> and -DBUILD_LABEL="..." set what edgetpu_version() reports.
 */
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MODE_WORKS 0
#define MODE_NULL 1
#define MODE_SEGV 2
#define MODE_HANG 3
#define MODE_ABORT 4

#ifndef STANDIN_MODE
#define STANDIN_MODE MODE_WORKS
#endif
#ifndef RUNTIME_VERSION
#define RUNTIME_VERSION 14
#endif
#define RT_STR_(x) #x
#define RT_STR(x) RT_STR_(x)
#ifndef BUILD_LABEL
#define BUILD_LABEL "COMPILER=edgekit-standin,DATE=redacted,TIME=redacted,CL_NUMBER=0"
#endif

/* ---- The subset of tensorflow/lite/core/c/common.h this library touches. The TFLite structs
 * are "semi-ABI stable": fields are only ever appended, so a prefix is enough for structs we
 * receive by pointer; TfLiteRegistration is passed BY VALUE, so it carries every field of the
 * current layout (TF 2.15+: up to inplace_operator). ---- */
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef struct TfLiteIntArray { int size; int data[]; } TfLiteIntArray;
typedef struct TfLiteNode {
  TfLiteIntArray* inputs;
  TfLiteIntArray* outputs;
  TfLiteIntArray* intermediates;
  TfLiteIntArray* temporaries;
  void* user_data; /* what the kernel's init returned */
} TfLiteNode;
struct TfLiteRegistration;
struct TfLiteDelegate;
typedef struct TfLiteContext {
  size_t tensors_size;
  TfLiteStatus (*GetExecutionPlan)(struct TfLiteContext*, TfLiteIntArray**);
  void* tensors;
  void* impl_;
  void* ResizeTensor;
  void (*ReportError)(struct TfLiteContext*, const char*, ...);
  void* AddTensors;
  TfLiteStatus (*GetNodeAndRegistration)(struct TfLiteContext*, int, TfLiteNode**,
                                         struct TfLiteRegistration**);
  TfLiteStatus (*ReplaceNodeSubsetsWithDelegateKernels)(struct TfLiteContext*,
                                                        struct TfLiteRegistration,
                                                        const TfLiteIntArray*,
                                                        struct TfLiteDelegate*);
} TfLiteContext;
typedef struct TfLiteRegistration {
  void* (*init)(TfLiteContext*, const char*, size_t);
  void (*free)(TfLiteContext*, void*);
  TfLiteStatus (*prepare)(TfLiteContext*, TfLiteNode*);
  TfLiteStatus (*invoke)(TfLiteContext*, TfLiteNode*);
  const char* (*profiling_string)(const TfLiteContext*, const TfLiteNode*);
  int32_t builtin_code;
  const char* custom_name;
  int version;
  void* registration_external;
  void* async_kernel;
  uint64_t inplace_operator;
} TfLiteRegistration;
typedef struct TfLiteDelegate {
  void* data_;
  TfLiteStatus (*Prepare)(TfLiteContext*, struct TfLiteDelegate*);
  void* CopyFromBufferHandle;
  void* CopyToBufferHandle;
  void* FreeBufferHandle;
  int64_t flags;
  void* opaque_delegate_builder;
} TfLiteDelegate;

/* ---- libedgetpu's C API (edgetpu_c.h) ---- */
enum edgetpu_device_type { EDGETPU_APEX_PCI = 0, EDGETPU_APEX_USB = 1 };
struct edgetpu_device { enum edgetpu_device_type type; const char* path; };

static long crash_after = -1, hang_after = -1, abort_after = -1, invokes = 0;
static long invoke_us = 0;
static const char* log_path = NULL;
static const char* trace_path = NULL;

/* TfLiteDelegateParams, what a delegate kernel's init receives: the delegate (its data_ holds the
 * device option it was created with). */
typedef struct { struct TfLiteDelegate* delegate; } DelegateParams;

static void trace(const TfLiteNode* node, const char* what) {
  if (!trace_path || !*trace_path) return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  FILE* f = fopen(trace_path, "a");
  if (!f) return;
  const char* device = node && node->user_data ? (const char*)node->user_data : "?";
  fprintf(f, "%d %s %s %lld\n", (int)getpid(), device, what,
          (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  fclose(f);
}
static const char* wedge_path = NULL;

__attribute__((unused)) static int wedged(void) {
  return wedge_path && *wedge_path && access(wedge_path, F_OK) == 0;
}

static int read_attr(const char* dir, const char* name, char* buf, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  size_t got = fread(buf, 1, n - 1, f);
  fclose(f);
  buf[got] = 0;
  while (got && (buf[got - 1] == '\n' || buf[got - 1] == ' ')) buf[--got] = 0;
  return 0;
}

static void write_attr(const char* dir, const char* name, const char* value) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "w");
  if (!f) return;
  fprintf(f, "%s\n", value);
  fclose(f);
}

/* The firmware upload: a 1a6e:089a stick comes back as 18d1:9302 with a new device number. */
__attribute__((unused)) static void load_firmware(void) {
  const char* dir = getenv("EDGETPU_STANDIN_SYSFS");
  char product[32], devnum[32];
  if (!dir || !*dir || read_attr(dir, "idProduct", product, sizeof product) != 0) return;
  if (strcmp(product, "089a") != 0) return;
  write_attr(dir, "idVendor", "18d1");
  write_attr(dir, "idProduct", "9302");
  if (read_attr(dir, "devnum", devnum, sizeof devnum) == 0) {
    char next[32], bus[32];
    long old = strtol(devnum, NULL, 10);
    snprintf(next, sizeof next, "%ld", old + 1);
    write_attr(dir, "devnum", next);
    /* the usbfs node moves with the device number (EDGETPU_STANDIN_DEVFS=<root>/dev/bus/usb) */
    const char* devfs = getenv("EDGETPU_STANDIN_DEVFS");
    if (devfs && *devfs && read_attr(dir, "busnum", bus, sizeof bus) == 0) {
      char path[4096];
      long b = strtol(bus, NULL, 10);
      snprintf(path, sizeof path, "%s/%03ld/%03ld", devfs, b, old);
      unlink(path);
      snprintf(path, sizeof path, "%s/%03ld/%03ld", devfs, b, old + 1);
      FILE* f = fopen(path, "w");
      if (f) fclose(f);
    }
  }
}

static void log_event(const char* what) {
  if (!log_path) return;
  FILE* f = fopen(log_path, "a");
  if (!f) return;
  fprintf(f, "%d %s\n", (int)getpid(), what);
  fclose(f);
}

static long env_long(const char* name) {
  const char* v = getenv(name);
  return (v && *v) ? strtol(v, NULL, 10) : -1;
}

static void hang_forever(void) {
  for (;;) pause();
}

/* libedgetpu's fatal log line when another process took the device over, then abort(). */
static void transfer_error_abort(void) {
  fprintf(stderr, "F :1155] HandleQueuedBulkIn failed: Deadline exceeded: USB transfer error 5 "
                  "[LibUsbDataInCallback]\n");
  fflush(stderr);
  abort();
}

static TfLiteStatus kernel_invoke(TfLiteContext* context, TfLiteNode* node) {
  (void)context;
  invokes++;
  log_event("invoke");
  trace(node, "begin");
  if (crash_after >= 0 && invokes > crash_after) {
    volatile int* nowhere = NULL;
    *nowhere = 1; /* a real SIGSEGV, as an ABI mismatch or a driver bug gives */
  }
  if (hang_after >= 0 && invokes > hang_after) hang_forever();
  if (abort_after >= 0 && invokes > abort_after) transfer_error_abort();
  if (wedged()) return kTfLiteError; /* a wedged device: every transfer fails */
  if (invoke_us > 0) usleep((useconds_t)invoke_us);
  trace(node, "end");
#if STANDIN_MODE == MODE_ABORT
  transfer_error_abort();
#endif
  return kTfLiteOk;
}

static void* kernel_init(TfLiteContext* context, const char* buffer, size_t length) {
  (void)context; (void)length;
  const DelegateParams* params = (const DelegateParams*)buffer;
  return params && params->delegate ? params->delegate->data_ : NULL;
}

static TfLiteStatus kernel_prepare(TfLiteContext* context, TfLiteNode* node) {
  (void)context; (void)node;
  return kTfLiteOk;
}

__attribute__((unused)) static TfLiteStatus delegate_prepare(TfLiteContext* context, TfLiteDelegate* delegate) {
  log_event("prepare");
#if STANDIN_MODE == MODE_SEGV
  volatile int* nowhere = NULL;
  *nowhere = 1;
#elif STANDIN_MODE == MODE_HANG
  hang_forever();
#endif
  TfLiteIntArray* plan = NULL;
  if (context->GetExecutionPlan(context, &plan) != kTfLiteOk) return kTfLiteError;
  TfLiteIntArray* claim = malloc(sizeof(TfLiteIntArray) + sizeof(int) * (size_t)plan->size);
  if (!claim) return kTfLiteError;
  claim->size = 0;
  for (int i = 0; i < plan->size; i++) {
    TfLiteNode* node = NULL;
    TfLiteRegistration* reg = NULL;
    if (context->GetNodeAndRegistration(context, plan->data[i], &node, &reg) != kTfLiteOk) {
      free(claim);
      return kTfLiteError;
    }
    if (reg && reg->custom_name && strcmp(reg->custom_name, "edgetpu-custom-op") == 0)
      claim->data[claim->size++] = plan->data[i];
  }
  TfLiteStatus status = kTfLiteOk;
  if (claim->size > 0) {
    TfLiteRegistration kernel;
    memset(&kernel, 0, sizeof kernel);
    kernel.init = kernel_init;
    kernel.prepare = kernel_prepare;
    kernel.invoke = kernel_invoke;
    kernel.builtin_code = 32; /* BuiltinOperator_DELEGATE */
    kernel.custom_name = "EdgeTpuStandIn";
    kernel.version = 1;
    status = context->ReplaceNodeSubsetsWithDelegateKernels(context, kernel, claim, delegate);
  }
  free(claim);
  return status;
}

static long attached(void) {
  long n = env_long("EDGETPU_STANDIN_DEVICES");
  return n < 0 ? 1 : n;
}

/* The index a device option names ("usb:1", ":1" -> 1; "usb", "" -> 0). */
static long device_index(const char* device) {
  const char* colon = device ? strchr(device, ':') : NULL;
  return colon ? strtol(colon + 1, NULL, 10) : 0;
}

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n,
                                              void (*report_error)(const char*)) {
  (void)report_error;
  const char* device = NULL;
  for (size_t i = 0; i < n; i++)
    if (keys[i] && strcmp(keys[i], "device") == 0) device = values[i];
  crash_after = env_long("EDGETPU_STANDIN_CRASH_AFTER");
  hang_after = env_long("EDGETPU_STANDIN_HANG_AFTER");
  abort_after = env_long("EDGETPU_STANDIN_ABORT_AFTER");
  const char* crash_device = getenv("EDGETPU_STANDIN_CRASH_DEVICE");
  if (crash_device && *crash_device && !(device && strcmp(device, crash_device) == 0))
    crash_after = hang_after = abort_after = -1; /* another Coral fails, not this one */
  const char* ms = getenv("EDGETPU_STANDIN_INVOKE_MS");
  invoke_us = (ms && *ms) ? (long)(strtod(ms, NULL) * 1000.0) : 0;
  log_path = getenv("EDGETPU_STANDIN_LOG");
  trace_path = getenv("EDGETPU_STANDIN_TRACE");
  wedge_path = getenv("EDGETPU_STANDIN_WEDGE");
  log_event("create");
  if (device_index(device) >= attached()) return NULL; /* no such device */
#if STANDIN_MODE == MODE_NULL
  return NULL; /* the real library reports nothing: Python says "Failed to load delegate" */
#else
  if (wedged()) return NULL; /* a wedged device cannot be opened */
  load_firmware();
  TfLiteDelegate* d = calloc(1, sizeof(TfLiteDelegate));
  if (d) {
    d->data_ = strdup(device && *device ? device : "usb:0"); /* named in the trace */
    d->Prepare = delegate_prepare;
    /* kTfLiteDelegateFlagsAllowDynamicTensors: without it TFLite prepares every node before
     * calling Prepare (to look for dynamic tensors) and the unclaimed edgetpu-custom-op fails
     * as "unresolved custom op". */
    d->flags = 1;
  }
  return d;
#endif
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) {
  log_event("destroy");
  if (delegate) free(delegate->data_);
  free(delegate);
}

const char* edgetpu_version(void) {
  return "BuildLabel(" BUILD_LABEL "), RuntimeVersion(" RT_STR(RUNTIME_VERSION) ")";
}

#define MAX_DEVICES 8
__attribute__((unused)) static struct edgetpu_device usb_devices[MAX_DEVICES] = {
    {EDGETPU_APEX_USB, "/sys/bus/usb/devices/2-1"}, {EDGETPU_APEX_USB, "/sys/bus/usb/devices/2-2"},
    {EDGETPU_APEX_USB, "/sys/bus/usb/devices/2-3"}, {EDGETPU_APEX_USB, "/sys/bus/usb/devices/2-4"},
    {EDGETPU_APEX_USB, "/sys/bus/usb/devices/2-5"}, {EDGETPU_APEX_USB, "/sys/bus/usb/devices/2-6"},
    {EDGETPU_APEX_USB, "/sys/bus/usb/devices/2-7"}, {EDGETPU_APEX_USB, "/sys/bus/usb/devices/2-8"}};

struct edgetpu_device* edgetpu_list_devices(size_t* num_devices) {
#if STANDIN_MODE == MODE_NULL
  *num_devices = 0;
  return NULL;
#else
  long n = attached();
  *num_devices = (size_t)(n > MAX_DEVICES ? MAX_DEVICES : n);
  return usb_devices;
#endif
}

void edgetpu_free_devices(struct edgetpu_device* dev) { (void)dev; }
