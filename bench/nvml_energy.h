// The GPU's energy counter and SM clock through NVML, for benchmarks of power-limited work (an
// H100 at its power limit runs below its top clock, so a kernel's speed in a long run depends on
// the energy it spends). libnvidia-ml comes with the driver; it is loaded at run time, so the
// build needs neither its header nor its library, and a machine without it just reports nothing.
#pragma once

#include <dlfcn.h>

#include <cuda_runtime.h>

class GpuEnergyMeter {
 public:
  explicit GpuEnergyMeter(int cuda_device) {
    lib_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib_) return;
    auto init = reinterpret_cast<int (*)()>(dlsym(lib_, "nvmlInit_v2"));
    auto by_bus = reinterpret_cast<int (*)(const char*, void**)>(dlsym(lib_, "nvmlDeviceGetHandleByPciBusId_v2"));
    energy_ = reinterpret_cast<int (*)(void*, unsigned long long*)>(dlsym(lib_, "nvmlDeviceGetTotalEnergyConsumption"));
    clock_ = reinterpret_cast<int (*)(void*, int, unsigned*)>(dlsym(lib_, "nvmlDeviceGetClockInfo"));
    char bus[32] = {};
    if (!init || !by_bus || !energy_ || !clock_ || init() != 0 ||
        cudaDeviceGetPCIBusId(bus, sizeof bus, cuda_device) != cudaSuccess || by_bus(bus, &device_) != 0)
      device_ = nullptr;
    unsigned long long mj = 0;
    if (device_ && energy_(device_, &mj) != 0) device_ = nullptr;  // the counter needs Volta or newer
  }
  ~GpuEnergyMeter() {
    if (lib_) dlclose(lib_);
  }
  GpuEnergyMeter(const GpuEnergyMeter&) = delete;
  GpuEnergyMeter& operator=(const GpuEnergyMeter&) = delete;

  bool ok() const { return device_ != nullptr; }
  // Millijoules since the driver loaded (0 when !ok()).
  unsigned long long millijoules() const {
    unsigned long long mj = 0;
    return ok() && energy_(device_, &mj) == 0 ? mj : 0;
  }
  // The SM clock now, MHz (0 when !ok()).
  unsigned sm_mhz() const {
    unsigned mhz = 0;
    return ok() && clock_(device_, /*NVML_CLOCK_SM*/ 1, &mhz) == 0 ? mhz : 0;
  }

 private:
  void* lib_ = nullptr;
  void* device_ = nullptr;
  int (*energy_)(void*, unsigned long long*) = nullptr;
  int (*clock_)(void*, int, unsigned*) = nullptr;
};
