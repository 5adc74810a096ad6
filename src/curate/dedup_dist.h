// `agpt data dedup` across the ranks of a communicator (mpirun -np N): the same decisions, report and output
// as one process (run_dedup), with the reading, the hashing, the key tables and the writing split over the
// ranks.
#pragma once
#include <cstdint>
#include <vector>

#include "curate/dedup.h"
#include "dist/communicator.h"

namespace agpt::curate {

// Every rank calls it with the same options (collectives inside).
//  - Shards: the inputs (corpus::expand_input_files(opt.inputs), in that order) are taken as one run of
//    bytes cut into N equal ranges; rank r reads, parses and hashes only what lies in range r, twice (pass 1
//    and pass 2; three times with --paragraphs): plain JSONL files are cut at the range boundaries (a line
//    belongs to the rank where it starts), other files (compressed, text) go whole to the rank holding
//    their middle byte. Global document numbers are rank r's own numbers plus the documents of ranks < r
//    (gathered after a rank's first read, with the line counts that give each piece's line numbers), so
//    numbers, origins ("path:line") and the read report are those of one process reading the files in order.
//  - Pass 1: exact hashes and band keys travel to the rank owning their hash range, which finds the
//    collisions; the band keys in rounds of at most opt.exchange_bytes per rank. With --threshold > 0
//    the owner of a bucket fetches the signatures of its members from their ranks. With the paragraph
//    stage, a first pass exchanges paragraph hashes the same way, and the document hashes are taken of
//    the text it leaves. Rank 0 gathers the pairs, the text sizes and the ranks' read reports, merges the
//    clusters and sends every rank the fates of its documents; the ids of originals held by another rank
//    are fetched from it (each rank keeps its documents' ids in an unlinked temporary file in
//    opt.tmp_dir, only when sink.removed is set).
//  - Pass 2: every rank sends its own documents, in input order, to its own sink. Rank r's documents
//    all follow rank r-1's, so the ranks' outputs concatenated in rank order are one process's output.
// The report is complete on rank 0 (read: the ranks' read reports merged in file order); the others get
// their own read report.
DedupReport run_dedup_distributed(const DedupOptions& opt, const DedupSink& sink, dist::Communicator& comm);

// Whole files to ranks: file_bytes are the files' sizes in reading order; returns N + 1 indices, rank r
// taking files [first[r], first[r + 1]): contiguous runs, a file going to the rank holding its middle byte
// when the bytes are cut into N equal ranges; with no bytes at all, by file count. Some ranks may get no
// file. (run_dedup_distributed uses this rule for the files it cannot cut, and this function when the
// inputs have no bytes.)
std::vector<size_t> shard_input_files(const std::vector<uint64_t>& file_bytes, int ranks);

}  // namespace agpt::curate
