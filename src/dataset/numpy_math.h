// The few numpy/Python floating-point operations whose exact rounding Megatron-LM's dataset
// builders depend on: numpy.sum of a float64 array (pairwise summation), the normalisation
// `w / numpy.sum(w)`, and Python's round() (half to even).
#pragma once
#include <cstddef>
#include <vector>

namespace agpt::dataset {

// numpy.sum(a) for a contiguous float64 array: 0.0 + pairwise(a, n), where pairwise adds fewer
// than 8 values in order, up to 128 values with 8 interleaved accumulators combined as
// ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) plus the remainder in order, and larger arrays as the sum
// of its two halves (the first half's length rounded down to a multiple of 8).
double numpy_sum(const double* a, size_t n);

// Megatron's `normalize`: numpy.array(w) / numpy.sum(w), element by element.
std::vector<double> numpy_normalize(const std::vector<double>& w);

// Python's round(x) for a float (to the nearest integer, ties to even), as a double.
double python_round(double x);

}  // namespace agpt::dataset
