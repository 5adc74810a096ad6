// `agpt data dedup` across the ranks of a communicator (mpirun -np N): the same decisions, report and output
// as one process (run_dedup), with the hashing and the key tables split over the ranks.
#pragma once
#include "curate/dedup.h"
#include "dist/communicator.h"

namespace agpt::curate {

// Every rank calls it with the same options (collectives inside). Pass 1: every rank reads all inputs but
// hashes only its share (the r-th of N contiguous slices of every batch of opt.batch_documents documents),
// then exact hashes and band keys travel to the rank owning their hash range (one all-to-all each), which
// finds the collisions; rank 0 gathers the results, merges the clusters and, in pass 2, alone reads the
// inputs again and calls sink. The report is complete on rank 0. With --threshold > 0 the owner of a bucket
// fetches the signatures of its members from their ranks. With the paragraph stage, a first pass exchanges
// paragraph hashes the same way, and the document hashes are taken of the text it leaves.
DedupReport run_dedup_distributed(const DedupOptions& opt, const DedupSink& sink, dist::Communicator& comm);

}  // namespace agpt::curate
