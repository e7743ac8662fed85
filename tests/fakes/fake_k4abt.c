/* A stand-in for libk4abt (Azure Kinect Body Tracking SDK 1.1), built by the tests only: the SDK
 * cannot be installed on the development and CI machines (no camera, no NVIDIA stack).
 *
 * The types are transcribed from k4abttypes.h 1.1.x so that the C compiler's layout can be
 * compared with capture/k4abt.py's ctypes structures (fake_layout). The functions keep the
 * contracts of k4abt.h: one output queue of limited size (enqueue answers TIMEOUT when it is
 * full), pop answers TIMEOUT when nothing is ready and FAILED once the tracker is shut down and
 * drained, frames are reference counted. Results are scripted by the test, per capture handle
 * (fake_add_result), and the fake counts live trackers and frames so that leaks show.
 *
 * Built with -DFAKE_SDK_1_0 it lacks k4abt_frame_get_system_timestamp_nsec, like SDK 1.0.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- k4atypes.h / k4abttypes.h (1.1.x) */
typedef enum { K4A_RESULT_SUCCEEDED = 0, K4A_RESULT_FAILED } k4a_result_t;
typedef enum {
    K4A_WAIT_RESULT_SUCCEEDED = 0,
    K4A_WAIT_RESULT_FAILED,
    K4A_WAIT_RESULT_TIMEOUT
} k4a_wait_result_t;
typedef struct _k4a_capture_t *k4a_capture_t;

typedef union {
    struct { float x, y, z; } xyz;
    float v[3];
} k4a_float3_t;

typedef union {
    struct { float w, x, y, z; } wxyz;
    float v[4];
} k4a_quaternion_t;

#define K4ABT_JOINT_COUNT 32
#define K4ABT_INVALID_BODY_ID 0xFFFFFFFF

typedef enum {
    K4ABT_SENSOR_ORIENTATION_DEFAULT = 0,
    K4ABT_SENSOR_ORIENTATION_CLOCKWISE90,
    K4ABT_SENSOR_ORIENTATION_COUNTERCLOCKWISE90,
    K4ABT_SENSOR_ORIENTATION_FLIP180,
} k4abt_sensor_orientation_t;

typedef enum {
    K4ABT_TRACKER_PROCESSING_MODE_GPU = 0,
    K4ABT_TRACKER_PROCESSING_MODE_CPU,
    K4ABT_TRACKER_PROCESSING_MODE_GPU_CUDA,
    K4ABT_TRACKER_PROCESSING_MODE_GPU_TENSORRT,
    K4ABT_TRACKER_PROCESSING_MODE_GPU_DIRECTML
} k4abt_tracker_processing_mode_t;

typedef struct _k4abt_tracker_configuration_t {
    k4abt_sensor_orientation_t sensor_orientation;
    k4abt_tracker_processing_mode_t processing_mode;
    int32_t gpu_device_id;
    const char *model_path;
} k4abt_tracker_configuration_t;

typedef enum {
    K4ABT_JOINT_CONFIDENCE_NONE = 0,
    K4ABT_JOINT_CONFIDENCE_LOW = 1,
    K4ABT_JOINT_CONFIDENCE_MEDIUM = 2,
    K4ABT_JOINT_CONFIDENCE_HIGH = 3,
    K4ABT_JOINT_CONFIDENCE_LEVELS_COUNT = 4,
} k4abt_joint_confidence_level_t;

typedef struct _k4abt_joint_t {
    k4a_float3_t position;
    k4a_quaternion_t orientation;
    k4abt_joint_confidence_level_t confidence_level;
} k4abt_joint_t;

typedef struct _k4abt_skeleton_t {
    k4abt_joint_t joints[K4ABT_JOINT_COUNT];
} k4abt_skeleton_t;

typedef struct _k4abt_body_t {
    uint32_t id;
    k4abt_skeleton_t skeleton;
} k4abt_body_t;

/* ---- layout report */
#define L(s, e) if (strcmp(what, s) == 0) return (long)(e);
long fake_layout(const char *what)
{
    L("sizeof k4a_float3_t", sizeof(k4a_float3_t))
    L("sizeof k4a_quaternion_t", sizeof(k4a_quaternion_t))
    L("sizeof k4abt_joint_t", sizeof(k4abt_joint_t))
    L("offsetof k4abt_joint_t.position", offsetof(k4abt_joint_t, position))
    L("offsetof k4abt_joint_t.orientation", offsetof(k4abt_joint_t, orientation))
    L("offsetof k4abt_joint_t.confidence_level", offsetof(k4abt_joint_t, confidence_level))
    L("sizeof k4abt_skeleton_t", sizeof(k4abt_skeleton_t))
    L("sizeof k4abt_body_t", sizeof(k4abt_body_t))
    L("offsetof k4abt_body_t.id", offsetof(k4abt_body_t, id))
    L("offsetof k4abt_body_t.skeleton", offsetof(k4abt_body_t, skeleton))
    L("sizeof k4abt_tracker_configuration_t", sizeof(k4abt_tracker_configuration_t))
    L("offsetof k4abt_tracker_configuration_t.sensor_orientation",
      offsetof(k4abt_tracker_configuration_t, sensor_orientation))
    L("offsetof k4abt_tracker_configuration_t.processing_mode",
      offsetof(k4abt_tracker_configuration_t, processing_mode))
    L("offsetof k4abt_tracker_configuration_t.gpu_device_id",
      offsetof(k4abt_tracker_configuration_t, gpu_device_id))
    L("offsetof k4abt_tracker_configuration_t.model_path",
      offsetof(k4abt_tracker_configuration_t, model_path))
    return -1;
}

/* ---- scripted results */
#define MAX_SCRIPT 4096
#define MAX_FAKE_BODIES 24
#define MAX_QUEUE 64

typedef struct {
    uintptr_t capture;
    uint64_t device_usec;
    uint64_t system_nsec;
    uint32_t num_bodies;
    uint32_t ids[MAX_FAKE_BODIES];
    k4abt_skeleton_t skeletons[MAX_FAKE_BODIES];
} fake_result;

typedef struct fake_frame {
    const fake_result *result;
    int refs;
} fake_frame;

typedef struct fake_tracker {
    int shutdown;
    float smoothing;
    fake_frame *queue[MAX_QUEUE];
    int queued;
} fake_tracker;

typedef struct _k4abt_tracker_t *k4abt_tracker_t;
typedef struct _k4abt_frame_t *k4abt_frame_t;

static fake_result g_script[MAX_SCRIPT];
static int g_script_len;
static int g_queue_capacity = 3;
static int g_create_result = K4A_RESULT_SUCCEEDED;
static int g_fail_pops;
static int g_live_trackers, g_live_frames;
static k4abt_tracker_configuration_t g_last_config;
static char g_last_model_path[1024];
static int g_last_model_path_null;
static uintptr_t g_last_calibration;
static float g_last_smoothing = -1.0f;

void fake_reset(void)
{
    g_script_len = 0;
    g_queue_capacity = 3;
    g_create_result = K4A_RESULT_SUCCEEDED;
    g_fail_pops = 0;
    g_last_smoothing = -1.0f;
    g_last_model_path[0] = 0;
    g_last_model_path_null = 1;
    g_last_calibration = 0;
}

int fake_add_result(uintptr_t capture, uint64_t device_usec, uint64_t system_nsec,
                    uint32_t num_bodies, const uint32_t *ids, const k4abt_skeleton_t *skeletons)
{
    if (g_script_len >= MAX_SCRIPT || num_bodies > MAX_FAKE_BODIES)
        return -1;
    fake_result *r = &g_script[g_script_len++];
    r->capture = capture;
    r->device_usec = device_usec;
    r->system_nsec = system_nsec;
    r->num_bodies = num_bodies;
    for (uint32_t i = 0; i < num_bodies; i++) {
        r->ids[i] = ids[i];
        r->skeletons[i] = skeletons[i];
    }
    return 0;
}

void fake_set_queue_capacity(int n) { g_queue_capacity = n < MAX_QUEUE ? n : MAX_QUEUE; }
void fake_set_create_result(int rc) { g_create_result = rc; }
void fake_fail_next_pops(int n) { g_fail_pops = n; }
int fake_live_trackers(void) { return g_live_trackers; }
int fake_live_frames(void) { return g_live_frames; }
int fake_last_sensor_orientation(void) { return g_last_config.sensor_orientation; }
int fake_last_processing_mode(void) { return g_last_config.processing_mode; }
int fake_last_gpu_device_id(void) { return g_last_config.gpu_device_id; }
const char *fake_last_model_path(void) { return g_last_model_path_null ? NULL : g_last_model_path; }
uintptr_t fake_last_calibration(void) { return g_last_calibration; }
float fake_last_smoothing(void) { return g_last_smoothing; }

/* ---- k4abt.h */
k4a_result_t k4abt_tracker_create(const void *sensor_calibration,
                                  k4abt_tracker_configuration_t config,
                                  k4abt_tracker_t *tracker_handle)
{
    g_last_config = config;
    g_last_calibration = (uintptr_t)sensor_calibration;
    g_last_model_path_null = config.model_path == NULL;
    if (config.model_path) {
        strncpy(g_last_model_path, config.model_path, sizeof g_last_model_path - 1);
        g_last_model_path[sizeof g_last_model_path - 1] = 0;
    }
    if (g_create_result != K4A_RESULT_SUCCEEDED || !sensor_calibration || !tracker_handle)
        return K4A_RESULT_FAILED;
    fake_tracker *t = calloc(1, sizeof *t);
    if (!t)
        return K4A_RESULT_FAILED;
    g_live_trackers++;
    *tracker_handle = (k4abt_tracker_t)t;
    return K4A_RESULT_SUCCEEDED;
}

void k4abt_tracker_destroy(k4abt_tracker_t tracker_handle)
{
    fake_tracker *t = (fake_tracker *)tracker_handle;
    if (!t)
        return;
    for (int i = 0; i < t->queued; i++) {
        free(t->queue[i]);
        g_live_frames--;
    }
    free(t);
    g_live_trackers--;
}

void k4abt_tracker_set_temporal_smoothing(k4abt_tracker_t tracker_handle, float smoothing_factor)
{
    ((fake_tracker *)tracker_handle)->smoothing = smoothing_factor;
    g_last_smoothing = smoothing_factor;
}

k4a_wait_result_t k4abt_tracker_enqueue_capture(k4abt_tracker_t tracker_handle,
                                                k4a_capture_t sensor_capture_handle,
                                                int32_t timeout_in_ms)
{
    (void)timeout_in_ms; /* the fake never blocks: a full queue stays full */
    fake_tracker *t = (fake_tracker *)tracker_handle;
    if (t->shutdown || !sensor_capture_handle)
        return K4A_WAIT_RESULT_FAILED;
    const fake_result *r = NULL;
    for (int i = 0; i < g_script_len; i++)
        if (g_script[i].capture == (uintptr_t)sensor_capture_handle) {
            r = &g_script[i];
            break;
        }
    if (!r) /* like a capture without a depth image */
        return K4A_WAIT_RESULT_FAILED;
    if (t->queued >= g_queue_capacity)
        return K4A_WAIT_RESULT_TIMEOUT;
    fake_frame *f = calloc(1, sizeof *f);
    f->result = r;
    f->refs = 1;
    g_live_frames++;
    t->queue[t->queued++] = f;
    return K4A_WAIT_RESULT_SUCCEEDED;
}

k4a_wait_result_t k4abt_tracker_pop_result(k4abt_tracker_t tracker_handle,
                                           k4abt_frame_t *body_frame_handle,
                                           int32_t timeout_in_ms)
{
    (void)timeout_in_ms;
    fake_tracker *t = (fake_tracker *)tracker_handle;
    if (g_fail_pops > 0) {
        g_fail_pops--;
        return K4A_WAIT_RESULT_FAILED;
    }
    if (t->queued == 0)
        return t->shutdown ? K4A_WAIT_RESULT_FAILED : K4A_WAIT_RESULT_TIMEOUT;
    *body_frame_handle = (k4abt_frame_t)t->queue[0];
    memmove(t->queue, t->queue + 1, (size_t)(t->queued - 1) * sizeof t->queue[0]);
    t->queued--;
    return K4A_WAIT_RESULT_SUCCEEDED;
}

void k4abt_tracker_shutdown(k4abt_tracker_t tracker_handle)
{
    ((fake_tracker *)tracker_handle)->shutdown = 1;
}

void k4abt_frame_release(k4abt_frame_t body_frame_handle)
{
    fake_frame *f = (fake_frame *)body_frame_handle;
    if (f && --f->refs == 0) {
        free(f);
        g_live_frames--;
    }
}

void k4abt_frame_reference(k4abt_frame_t body_frame_handle)
{
    ((fake_frame *)body_frame_handle)->refs++;
}

uint32_t k4abt_frame_get_num_bodies(k4abt_frame_t body_frame_handle)
{
    return ((fake_frame *)body_frame_handle)->result->num_bodies;
}

k4a_result_t k4abt_frame_get_body_skeleton(k4abt_frame_t body_frame_handle, uint32_t index,
                                           k4abt_skeleton_t *skeleton)
{
    const fake_result *r = ((fake_frame *)body_frame_handle)->result;
    if (index >= r->num_bodies || !skeleton)
        return K4A_RESULT_FAILED;
    *skeleton = r->skeletons[index];
    return K4A_RESULT_SUCCEEDED;
}

uint32_t k4abt_frame_get_body_id(k4abt_frame_t body_frame_handle, uint32_t index)
{
    const fake_result *r = ((fake_frame *)body_frame_handle)->result;
    return index < r->num_bodies ? r->ids[index] : K4ABT_INVALID_BODY_ID;
}

uint64_t k4abt_frame_get_device_timestamp_usec(k4abt_frame_t body_frame_handle)
{
    return ((fake_frame *)body_frame_handle)->result->device_usec;
}

#ifndef FAKE_SDK_1_0
uint64_t k4abt_frame_get_system_timestamp_nsec(k4abt_frame_t body_frame_handle)
{
    return ((fake_frame *)body_frame_handle)->result->system_nsec;
}
#endif
