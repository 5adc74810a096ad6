#include "eval/evaluator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "eval/docs.h"
#include "eval/filters.h"
#include "eval/prompt.h"
#include "eval/requests.h"
#include "eval/sha256.h"
#include "infer/generator.h"

namespace agpt::eval {

void Speed::add(const Speed& o) {
  requests += o.requests;
  input_tokens += o.input_tokens;
  padded_tokens += o.padded_tokens;
  prompt_tokens += o.prompt_tokens;
  generated_tokens += o.generated_tokens;
  seconds += o.seconds;
  latencies.insert(latencies.end(), o.latencies.begin(), o.latencies.end());
}

double Speed::tokens_per_second() const {
  return seconds > 0 ? static_cast<double>(input_tokens + prompt_tokens + generated_tokens) / seconds : 0;
}
double Speed::requests_per_second() const { return seconds > 0 ? static_cast<double>(requests) / seconds : 0; }

const ShotResult* TaskResult::at_shots(int k) const {
  for (const ShotResult& s : shots)
    if (s.shots == k) return &s;
  return nullptr;
}

const MetricResult* TaskResult::metric(int k, const std::string& name) const {
  if (const ShotResult* s = at_shots(k))
    for (const MetricResult& m : s->metrics)
      if (m.name == name) return &m;
  return nullptr;
}

Evaluator::Evaluator(model::Llama& model, const text::Tokenizer& tokenizer, EvalOptions options)
    : model_(model), tokenizer_(tokenizer), options_(std::move(options)), scorer_(model, options_.scorer) {
  if (options_.fewshot_samples < 1) fail("the number of few-shot samples must be >= 1, got ", options_.fewshot_samples);
  if (options_.limit < 0) fail("--limit must be >= 0, got ", options_.limit);
  for (int k : options_.shots)
    if (k < 0) fail("shot counts must be >= 0, got ", k);
}

namespace {

// One pass over the documents with one prompt, shot count and few-shot seed.
struct Run {
  int shots = 0;
  const Prompt* prompt = nullptr;
  uint64_t seed = 0;
  std::vector<Instance> instances;       // per document
  std::vector<size_t> first_request;     // per document: index of its first log-likelihood request
  std::vector<std::vector<double>> per_metric;  // metric -> per-document values
  std::vector<std::string> answers;      // per document (agreement)
};

std::string metric_key(const MetricSpec& m, const FilterChain& f) {
  return f.name == "none" ? m.name : m.name + "," + f.name;
}

}  // namespace

void check_task_data(const Task& task, const EvalOptions& options) {
  std::vector<Doc> docs = read_docs(task.data_files.at(task.eval_split));
  if (options.limit > 0 && static_cast<int64_t>(docs.size()) > options.limit) docs.resize(static_cast<size_t>(options.limit));
  const bool rolling = task.output_type == OutputType::kLoglikelihoodRolling;
  int max_shots = options.shots.empty() ? task.num_fewshot.value_or(0) : *std::max_element(options.shots.begin(), options.shots.end());
  if (rolling) max_shots = 0;
  std::vector<Doc> pool;
  if (max_shots > 0) {
    if (task.fewshot_split.empty())
      fail("task ", task.name, " (", task.file, ") has no few-shot split; add `fewshot_split:` or use --shots 0");
    pool = read_docs(task.data_files.at(task.fewshot_split));
  }
  const bool same_split = task.fewshot_split == task.eval_split;
  std::vector<const Prompt*> prompts = {&task.prompt};
  if (!options.only_default_prompt && !rolling)
    for (const Prompt& p : task.extra_prompts) prompts.push_back(&p);
  for (const Prompt* p : prompts)
    for (size_t d = 0; d < docs.size(); ++d) {
      std::vector<const Doc*> shots;
      if (max_shots > 0) {
        try {
          for (size_t i : sample_shots(pool.size(), static_cast<size_t>(max_shots), options.seed, d,
                                       same_split ? std::optional<size_t>(d) : std::nullopt))
            shots.push_back(&pool[i]);
        } catch (const Error& e) {
          fail("task ", task.name, ": ", e.what(), " in split '", task.fewshot_split, "'; lower --shots");
        }
      }
      build_instance(task, *p, docs[d], shots);
    }
  for (const FilterChain& f : task.filters) Filter check(f);
}

TaskResult Evaluator::evaluate(const Task& task) {
  using Clock = std::chrono::steady_clock;
  TaskResult result;
  result.name = task.name;
  result.file = task.file;
  result.sha256 = task.sha256;
  result.version = task.version;
  result.output_type = task.output_type;

  std::vector<Doc> docs = read_docs(task.data_files.at(task.eval_split));
  result.data_sha256[task.data_files.at(task.eval_split)] = sha256_hex(read_file(task.data_files.at(task.eval_split)));
  if (options_.limit > 0 && static_cast<int64_t>(docs.size()) > options_.limit) docs.resize(static_cast<size_t>(options_.limit));
  result.docs = docs.size();

  std::vector<int> shot_counts = options_.shots;
  if (shot_counts.empty()) shot_counts = {task.num_fewshot.value_or(0)};
  const bool rolling = task.output_type == OutputType::kLoglikelihoodRolling;
  if (rolling) shot_counts = {0};  // documents are scored alone
  const int max_shots = *std::max_element(shot_counts.begin(), shot_counts.end());

  std::vector<Doc> pool;
  const bool same_split = task.fewshot_split == task.eval_split;
  if (max_shots > 0) {
    if (task.fewshot_split.empty())
      fail("task ", task.name, " (", task.file, ") has no few-shot split; add `fewshot_split:` or use --shots 0");
    const std::string& f = task.data_files.at(task.fewshot_split);
    pool = read_docs(f);  // the whole split, also when --limit cuts the evaluated one
    result.data_sha256[f] = sha256_hex(read_file(f));
  }

  std::vector<const Prompt*> prompts = {&task.prompt};
  if (!options_.only_default_prompt && !rolling)
    for (const Prompt& p : task.extra_prompts) prompts.push_back(&p);
  for (const Prompt* p : prompts) result.prompts.push_back(p->name);

  // ---- build every run's instances and requests ----
  std::vector<Run> runs;
  for (int k : shot_counts)
    for (const Prompt* p : prompts)
      for (int s = 0; s < (k > 0 ? options_.fewshot_samples : 1); ++s) {
        Run run;
        run.shots = k;
        run.prompt = p;
        run.seed = options_.seed + static_cast<uint64_t>(s);
        runs.push_back(std::move(run));
      }

  std::vector<TokenRequest> requests;
  struct RequestOrigin {
    size_t run, doc;
    int choice;
    std::string context, continuation;
  };
  std::vector<RequestOrigin> origins;
  const int32_t prefix = rolling ? prefix_token(tokenizer_) : 0;
  for (size_t r = 0; r < runs.size(); ++r) {
    Run& run = runs[r];
    for (size_t d = 0; d < docs.size(); ++d) {
      std::vector<const Doc*> shots;
      if (run.shots > 0) {
        std::optional<size_t> exclude = same_split ? std::optional<size_t>(d) : std::nullopt;
        try {
          for (size_t i : sample_shots(pool.size(), static_cast<size_t>(run.shots), run.seed, d, exclude))
            shots.push_back(&pool[i]);
        } catch (const Error& e) {
          fail("task ", task.name, ": ", e.what(), " in split '", task.fewshot_split, "'; lower --shots");
        }
      }
      run.instances.push_back(build_instance(task, *run.prompt, docs[d], shots));
      const Instance& in = run.instances.back();
      run.first_request.push_back(requests.size());
      if (task.output_type == OutputType::kMultipleChoice) {
        for (size_t c = 0; c < in.choices.size(); ++c) {
          std::string cont = run.prompt->target_delimiter + in.choices[c];
          requests.push_back(encode_pair(tokenizer_, in.context, cont));
          if (options_.dump_requests) origins.push_back({r, d, static_cast<int>(c), in.context, cont});
        }
      } else if (rolling) {
        for (TokenRequest& w : rolling_windows(encode(tokenizer_, in.targets[0]), prefix, scorer_.max_length())) {
          requests.push_back(std::move(w));
          if (options_.dump_requests) origins.push_back({r, d, -1, "", ""});
        }
      }
    }
    run.first_request.push_back(requests.size());
  }

  // ---- score log-likelihoods, generate ----
  const bool generating = task.output_type == OutputType::kGenerateUntil;
  const int repeats = task.repeats;
  const size_t generations = generating ? runs.size() * docs.size() * static_cast<size_t>(repeats) : 0;
  std::unique_ptr<Progress> progress;
  if (options_.show_progress) progress = std::make_unique<Progress>("eval " + task.name, requests.size() + generations, "req");

  ScoreTiming timing;
  size_t reported = 0;
  std::vector<ScoreResult> scores = scorer_.score(requests, &timing, [&](size_t done) {
    if (progress) progress->add(done - reported);
    reported = done;
  });
  result.speed.requests = static_cast<int64_t>(requests.size());
  result.speed.input_tokens = timing.input_tokens;
  result.speed.padded_tokens = timing.padded_tokens;
  result.speed.seconds = timing.seconds;
  result.speed.latencies = timing.latencies;

  // generate_until: responses[run][doc] = one response per repeat.
  std::vector<std::vector<std::vector<std::string>>> responses(runs.size());
  if (generating) {
    infer::Generator generator(model_, tokenizer_);
    const GenerationSettings& g = task.generation;
    const int64_t L = scorer_.max_length();
    const int64_t max_new = std::min<int64_t>(g.max_gen_toks, L - 1);
    for (size_t r = 0; r < runs.size(); ++r) {
      responses[r].resize(docs.size());
      for (size_t d = 0; d < docs.size(); ++d) {
        std::vector<int32_t> ids = encode(tokenizer_, runs[r].instances[d].context);
        if (ids.empty()) ids = {prefix_token(tokenizer_)};
        // Keep the prompt's end when it does not fit beside the answer (lm-eval cuts from the left).
        if (static_cast<int64_t>(ids.size()) > L - max_new) ids.erase(ids.begin(), ids.end() - (L - max_new));
        for (int k = 0; k < repeats; ++k) {
          if (!g.do_sample && k > 0) {  // greedy repeats are identical: generate once
            responses[r][d].push_back(responses[r][d][0]);
            if (progress) progress->add(1);
            continue;
          }
          infer::GenerateOptions o;
          o.max_tokens = max_new;
          o.stop = g.until;
          o.sampling.temperature = g.do_sample ? (g.temperature > 0 ? g.temperature : 1.0) : 0.0;
          o.sampling.top_k = g.top_k;
          o.sampling.top_p = g.top_p;
          o.sampling.seed = options_.seed ^ (0xD1B54A32D192ED03ull * (d + 1)) ^ (0x8CB92BA72F3D8DD7ull * (static_cast<uint64_t>(k) + 1));
          Clock::time_point t0 = Clock::now();
          infer::GenerateResult gr = generator.generate_ids(ids, o);
          double secs = std::chrono::duration<double>(Clock::now() - t0).count();
          result.speed.requests += 1;
          result.speed.prompt_tokens += static_cast<int64_t>(ids.size());
          result.speed.generated_tokens += static_cast<int64_t>(gr.tokens.size());
          result.speed.seconds += secs;
          result.speed.latencies.push_back(secs);
          // Valid UTF-8 from here on (filters, matching, JSON): a token may end inside a character.
          responses[r][d].push_back(valid_utf8(gr.text));
          if (progress) progress->add(1);
        }
      }
    }
  }
  if (progress) progress->finish();

  // ---- per-document scores ----
  std::vector<Filter> filters;
  for (const FilterChain& f : task.filters) filters.emplace_back(f);
  std::vector<std::string> metric_names;
  if (generating) {
    for (const FilterChain& f : task.filters)
      for (const MetricSpec& m : task.metrics) metric_names.push_back(metric_key(m, f));
  } else {
    for (const MetricSpec& m : task.metrics) metric_names.push_back(m.name);
  }
  result.primary_metric = metric_names.at(0);

  for (size_t r = 0; r < runs.size(); ++r) {
    Run& run = runs[r];
    run.per_metric.assign(rolling ? 4 : metric_names.size(), {});
    for (size_t d = 0; d < docs.size(); ++d) {
      const Instance& in = run.instances[d];
      Json sample;
      if (options_.log_samples)
        sample = {{"doc", d}, {"where", docs[d].where}, {"shots", run.shots}, {"prompt", run.prompt->name}, {"seed", run.seed}};
      if (task.output_type == OutputType::kMultipleChoice) {
        ChoiceScores cs;
        for (size_t i = run.first_request[d]; i < run.first_request[d + 1]; ++i) {
          cs.loglikelihoods.push_back(scores[i].logprob);
          cs.is_greedy.push_back(scores[i].is_greedy);
        }
        for (size_t m = 0; m < task.metrics.size(); ++m)
          run.per_metric[m].push_back(choice_metric(task.metrics[m].name, cs, in.choices, in.gold));
        run.answers.push_back(std::to_string(predicted_choice(cs)));
        if (options_.log_samples) {
          sample["context"] = in.context;
          sample["choices"] = in.choices;
          sample["gold"] = in.gold;
          sample["loglikelihoods"] = cs.loglikelihoods;
          sample["prediction"] = predicted_choice(cs);
        }
      } else if (generating) {
        size_t col = 0;
        std::string first_answer;
        Json filtered = Json::object();
        for (size_t f = 0; f < filters.size(); ++f) {
          std::string answer = filters[f].apply(responses[r][d]);
          if (f == 0) first_answer = answer;
          filtered[filters[f].name()] = valid_utf8(answer);  // a filter may cut a character
          for (const MetricSpec& m : task.metrics) run.per_metric[col++].push_back(exact_match(m, answer, in.targets));
        }
        run.answers.push_back(first_answer);
        if (options_.log_samples) {
          sample["context"] = in.context;
          sample["targets"] = in.targets;
          sample["responses"] = responses[r][d];
          sample["filtered"] = filtered;
        }
      } else {  // rolling: the document's log-likelihood, then sums over documents (below)
        double ll = 0;
        int64_t tokens = 0;
        for (size_t i = run.first_request[d]; i < run.first_request[d + 1]; ++i) {
          ll += scores[i].logprob;
          tokens += scores[i].tokens;
        }
        run.per_metric[0].push_back(ll);  // reused below: columns hold ll, words, bytes, tokens
        run.per_metric[1].push_back(static_cast<double>(count_words(in.targets[0])));
        run.per_metric[2].push_back(static_cast<double>(in.targets[0].size()));
        run.per_metric[3].push_back(static_cast<double>(tokens));
        if (options_.log_samples) {
          sample["loglikelihood"] = ll;
          sample["tokens"] = tokens;
          sample["bytes"] = in.targets[0].size();
        }
      }
      if (options_.log_samples) result.samples.push_back(std::move(sample));
    }
  }

  if (options_.dump_requests)
    for (size_t i = 0; i < requests.size(); ++i) {
      const RequestOrigin& o = origins[i];
      result.requests.push_back({{"task", task.name},
                                 {"shots", runs[o.run].shots},
                                 {"prompt", runs[o.run].prompt->name},
                                 {"seed", runs[o.run].seed},
                                 {"doc", o.doc},
                                 {"choice", o.choice},
                                 {"context", o.context},
                                 {"continuation", o.continuation},
                                 {"context_ids", requests[i].context},
                                 {"continuation_ids", requests[i].continuation},
                                 {"logprob", scores[i].logprob},
                                 {"is_greedy", scores[i].is_greedy}});
    }

  // ---- metrics per run, then per shot count ----
  auto run_metrics = [&](const Run& run) {
    std::vector<MetricResult> out;
    if (rolling) {
      double ll = 0, words = 0, bytes = 0, tokens = 0;
      for (size_t d = 0; d < docs.size(); ++d) {
        ll += run.per_metric[0][d], words += run.per_metric[1][d];
        bytes += run.per_metric[2][d], tokens += run.per_metric[3][d];
      }
      for (const MetricSpec& m : task.metrics) {
        double v = 0;
        if (m.name == "word_perplexity") v = std::exp(-ll / std::max(words, 1.0));
        else if (m.name == "byte_perplexity") v = std::exp(-ll / std::max(bytes, 1.0));
        else if (m.name == "bits_per_byte") v = -ll / std::max(bytes, 1.0) / std::log(2.0);
        else v = std::exp(-ll / std::max(tokens, 1.0));
        out.push_back({m.name, v, std::nullopt});
      }
      return out;
    }
    for (size_t m = 0; m < metric_names.size(); ++m) {
      MeanStderr ms = mean_stderr(run.per_metric[m]);
      out.push_back({metric_names[m], ms.mean, ms.stderr_});
    }
    return out;
  };
  for (int k : shot_counts) {
    if (result.at_shots(k)) continue;  // a shot count given twice
    ShotResult sr;
    sr.shots = k;
    std::vector<const Run*> of_k;
    for (const Run& run : runs)
      if (run.shots == k) of_k.push_back(&run);
    sr.metrics = run_metrics(*of_k[0]);
    if (of_k.size() >= 2) {
      Reliability rel;
      rel.metric = result.primary_metric;
      std::vector<double> values;
      std::vector<std::vector<std::string>> answers;
      for (const Run* run : of_k) {
        double v = run_metrics(*run)[0].value;
        rel.runs.push_back({run->prompt->name, run->seed, v});
        values.push_back(v);
        answers.push_back(run->answers);
      }
      MeanStderr ms = mean_stderr(values);
      rel.mean = ms.mean;
      rel.std = sample_std(values);
      rel.min = *std::min_element(values.begin(), values.end());
      rel.max = *std::max_element(values.begin(), values.end());
      rel.agreement = agreement(answers);
      sr.reliability = std::move(rel);
    }
    result.shots.push_back(std::move(sr));
  }
  return result;
}

}  // namespace agpt::eval
