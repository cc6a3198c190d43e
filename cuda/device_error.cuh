// Host access to the device-side error flag (common.cuh). Call only after the stream is synchronised.
#pragma once
unsigned int* apt_device_error_ptr();
unsigned int apt_device_error_take();
