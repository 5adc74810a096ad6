#include "train/tensor_parallel_group.h"

#include "base/error.h"

namespace agpt::train {

ParallelGroups make_parallel_groups(dist::Communicator& world, int tp) {
  if (tp < 1) fail("tensor parallel size ", tp, " must be at least 1");
  if (world.size() % tp != 0)
    fail("tensor parallel size ", tp, " does not divide the ", world.size(),
         " ranks of this job (world size = data parallel x tensor parallel); start a multiple of ", tp, " ranks");
  ParallelGroups g;
  g.tp_size = tp;
  g.dp_size = world.size() / tp;
  g.tp_rank = world.rank() % tp;
  g.dp_rank = world.rank() / tp;
  g.tp = world.split(g.dp_rank, g.tp_rank);
  g.dp = world.split(g.tp_rank, g.dp_rank);
  return g;
}

}  // namespace agpt::train
