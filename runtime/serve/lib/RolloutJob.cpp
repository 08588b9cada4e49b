//===- RolloutJob.cpp - Prompts file -> rollout groups -> JSON lines ------===//
#include "moec/serve/RolloutJob.h"

#include "moec/runtime/AtomicFile.h"
#include "moec/runtime/Chat.h"
#include "moec/runtime/ChatTemplate.h"
#include "moec/runtime/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace moec {

using nlohmann::json;

namespace {

/// Code points of UTF-8 text (invalid bytes as U+FFFD).
std::vector<uint32_t> codePoints(const std::string &text) {
  std::string clean = sanitizeUtf8(text);
  std::vector<uint32_t> out;
  for (size_t i = 0; i < clean.size();) {
    uint8_t b = uint8_t(clean[i]);
    size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    uint32_t cp = n == 1 ? b : n == 2 ? b & 0x1F : n == 3 ? b & 0x0F : b & 0x07;
    for (size_t k = 1; k < n; ++k)
      cp = (cp << 6) | (uint8_t(clean[i + k]) & 0x3F);
    out.push_back(cp);
    i += n;
  }
  return out;
}

bool isHan(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0xF900 && c <= 0xFAFF);
}

std::string trim(const std::string &s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

/// Runs `command` with `input` on stdin and `env` added; its stdout.
Status runCommand(const std::string &command, const std::string &input,
                  const std::vector<std::string> &env, std::string *output) {
  char tmpl[] = "/tmp/moec-reward-XXXXXX";
  int in = mkstemp(tmpl);
  if (in < 0)
    return Status::error("cannot make a temporary file: %s", std::strerror(errno));
  unlink(tmpl);
  if (write(in, input.data(), input.size()) != ssize_t(input.size()) || lseek(in, 0, SEEK_SET) != 0) {
    close(in);
    return Status::error("cannot write the reward command's input");
  }
  int pipeFds[2];
  if (pipe(pipeFds) != 0) {
    close(in);
    return Status::error("pipe: %s", std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in, 0);
  posix_spawn_file_actions_adddup2(&actions, pipeFds[1], 1);
  posix_spawn_file_actions_addclose(&actions, pipeFds[0]);
  std::vector<std::string> envStrings = env;
  for (char **e = environ; *e; ++e)
    envStrings.push_back(*e);
  std::vector<char *> envp;
  for (std::string &e : envStrings)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string shell = "sh", flag = "-c", cmd = command;
  char *argv[] = {shell.data(), flag.data(), cmd.data(), nullptr};
  pid_t pid;
  int rc = posix_spawnp(&pid, "sh", &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(in);
  close(pipeFds[1]);
  if (rc != 0) {
    close(pipeFds[0]);
    return Status::error("cannot run sh: %s", std::strerror(rc));
  }
  output->clear();
  char buffer[4096];
  for (ssize_t n; (n = read(pipeFds[0], buffer, sizeof(buffer))) > 0;)
    output->append(buffer, size_t(n));
  close(pipeFds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Status::error("the reward command failed (exit status %d)",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return Status();
}

} // namespace

double verseReward(const std::string &poem) {
  size_t clauseLength = 0; // 5 or 7 once known
  int lines = 0;
  size_t start = 0;
  while (start <= poem.size()) {
    size_t end = poem.find('\n', start);
    std::string line = trim(poem.substr(start, end == std::string::npos ? std::string::npos
                                                                          : end - start));
    start = end == std::string::npos ? poem.size() + 1 : end + 1;
    // Titles, authors and attributions are not verse lines.
    if (line.empty() || line.rfind("--", 0) == 0 || line.rfind("《", 0) == 0 ||
        line.rfind("作者", 0) == 0)
      continue;
    std::vector<uint32_t> cps = codePoints(line);
    size_t run = 0;
    for (size_t k = 0; k < cps.size(); ++k) {
      uint32_t c = cps[k];
      if (isHan(c)) {
        ++run;
        continue;
      }
      bool clauseEnd = c == 0xFF0C || c == 0x3002 || c == 0xFF1F || c == 0xFF01 || c == 0xFF1B;
      if (!clauseEnd || (run != 5 && run != 7))
        return 0;
      if (clauseLength == 0)
        clauseLength = run;
      if (run != clauseLength)
        return 0;
      run = 0;
    }
    uint32_t lastChar = cps.empty() ? 0 : cps.back();
    if (run != 0 || !(lastChar == 0x3002 || lastChar == 0xFF1F || lastChar == 0xFF01))
      return 0;
    ++lines;
  }
  return lines > 0 ? 1 : 0;
}

Status runRolloutJob(Executor &executor, const Tokenizer &tokenizer,
                     const ChatTemplate *chatTemplate, const RolloutJobOptions &options,
                     RolloutJobStats *stats) {
  RolloutJobStats local;
  RolloutJobStats &s = stats ? *stats : local;
  auto start = std::chrono::steady_clock::now();
  std::ifstream in(options.promptsPath, std::ios::binary);
  if (!in)
    return Status::error("%s: cannot read: %s", options.promptsPath.c_str(), std::strerror(errno));
  struct Entry {
    std::string id, promptText, answer;
    bool hasAnswer = false;
    std::vector<int32_t> ids;
  };
  std::vector<Entry> entries;
  std::string line;
  int64_t lineNumber = 0;
  int64_t longest = 0;
  while (std::getline(in, line)) {
    ++lineNumber;
    if (trim(line).empty())
      continue;
    auto where = [&](const std::string &what) {
      return Status::error("%s:%" PRId64 ": %s", options.promptsPath.c_str(), lineNumber,
                           what.c_str());
    };
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return where("not a JSON object");
    Entry e;
    e.id = !j.contains("id") ? std::to_string(entries.size())
           : j["id"].is_string() ? j["id"].get<std::string>()
                                 : j["id"].dump();
    if (j.contains("answer")) {
      if (!j["answer"].is_string())
        return where("\"answer\" must be a string");
      e.answer = j["answer"].get<std::string>();
      e.hasAnswer = true;
    }
    if (j.contains("prompt") && j["prompt"].is_string()) {
      e.promptText = j["prompt"].get<std::string>();
      e.ids = tokenizer.encodePrompt(e.promptText, options.bos);
    } else if (j.contains("messages") && j["messages"].is_array()) {
      if (!chatTemplate)
        return where("\"messages\" need a chat template, and the plan has none");
      std::vector<ChatMessage> messages;
      for (const json &m : j["messages"]) {
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() ||
            !m.contains("content") || !m["content"].is_string())
          return where("every message needs a \"role\" and a string \"content\"");
        messages.push_back({m["role"], m["content"]});
      }
      ChatRenderOptions render;
      render.bosToken = std::string(tokenizer.tokenBytes(tokenizer.bosId()));
      render.eosToken = std::string(tokenizer.tokenBytes(tokenizer.eosId()));
      MOEC_RETURN_IF_ERROR(chatTemplate->render(messages, render, &e.promptText).withPrefix(
          options.promptsPath + ":" + std::to_string(lineNumber)));
      tokenizer.encode(e.promptText, &e.ids);
    } else {
      return where("needs \"prompt\" (a string) or \"messages\" (a list)");
    }
    if (e.ids.empty())
      return where("the prompt encodes to no tokens");
    if (options.reward == "exact" && options.rewardCommand.empty() && !e.hasAnswer)
      return where("--reward exact needs an \"answer\"");
    longest = std::max<int64_t>(longest, int64_t(e.ids.size()));
    entries.push_back(std::move(e));
  }
  if (entries.empty())
    return Status::error("%s: no prompts", options.promptsPath.c_str());

  const RolloutOptions &ro = options.rollout;
  std::unique_ptr<KvCache> cache;
  MOEC_RETURN_IF_ERROR(
      executor.createCache(ro.groupSize + 1, longest + ro.maxNewTokens, &cache));
  std::string out;
  double rewardSum = 0;
  for (size_t g = 0; g < entries.size(); ++g) {
    const Entry &e = entries[g];
    std::vector<RolloutSample> samples;
    MOEC_RETURN_IF_ERROR(rolloutGroup(executor, *cache, e.ids, g, ro, &samples, &s.rollout)
                             .withPrefix("prompt " + e.id));
    std::vector<double> rewards;
    std::vector<std::string> texts;
    for (size_t i = 0; i < samples.size(); ++i) {
      const RolloutSample &r = samples[i];
      std::vector<int32_t> visible(r.tokens.begin(),
                                   r.tokens.end() - (r.finishReason == "stop" ? 1 : 0));
      std::string text;
      MOEC_RETURN_IF_ERROR(tokenizer.decode(visible, false, &text));
      double reward = 0;
      if (!options.rewardCommand.empty()) {
        std::string printed;
        MOEC_RETURN_IF_ERROR(runCommand(options.rewardCommand, text,
                                        {"MOEC_PROMPT_ID=" + e.id, "MOEC_PROMPT=" + e.promptText,
                                         "MOEC_ANSWER=" + e.answer},
                                        &printed)
                                 .withPrefix("prompt " + e.id + ", sample " + std::to_string(i)));
        char *end = nullptr;
        std::string value = trim(printed);
        reward = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || !std::isfinite(reward))
          return Status::error("prompt %s, sample %zu: the reward command printed \"%s\", not a "
                               "number",
                               e.id.c_str(), i, value.substr(0, 80).c_str());
      } else if (options.reward == "exact") {
        size_t think = text.rfind("</think>");
        std::string answer = trim(think == std::string::npos ? text : text.substr(think + 8));
        reward = answer == trim(e.answer) ? 1 : 0;
      } else if (options.reward == "verse") {
        reward = verseReward(e.promptText.empty() || e.promptText.find("<｜") != std::string::npos
                                 ? text
                                 : e.promptText + text);
      }
      rewards.push_back(reward);
      texts.push_back(text);
      s.generatedTokens += int64_t(r.tokens.size());
      rewardSum += reward;
    }
    std::vector<double> advantages = groupAdvantages(rewards);
    for (size_t i = 0; i < samples.size(); ++i) {
      json row = {{"prompt_id", e.id},
                  {"sample", i},
                  {"tokens", samples[i].tokens},
                  {"text", texts[i]},
                  {"logprobs", samples[i].logprobs},
                  {"reward", rewards[i]},
                  {"advantage", advantages[i]},
                  {"finish_reason", samples[i].finishReason}};
      out += row.dump() + "\n";
    }
    ++s.prompts;
    s.samples += int64_t(samples.size());
  }
  s.meanReward = s.samples ? rewardSum / double(s.samples) : 0;
  MOEC_RETURN_IF_ERROR(writeFileAtomically(options.outputPath, [&](OutputFile &file) {
    return file.write(out.data(), out.size());
  }));
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return Status();
}

} // namespace moec
