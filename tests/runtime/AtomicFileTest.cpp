//===- AtomicFileTest.cpp - Output files: no debris, no torn files, no hang ===//
//
// Issue 13, items 1, 2, 3, 5 and 6: every writer goes through moec::OutputFile.
// These tests interrupt writers with signals (in child processes), fill a small
// tmpfs in a private mount namespace, race writers of one destination, write to
// special files and symlinks, and map a FIFO and a truncated file.
//
//===----------------------------------------------------------------------===//
#include "TinyModel.h"

#include "moec/runtime/AtomicFile.h"
#include "moec/runtime/MappedFile.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <sched.h>
#include <set>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

namespace moec::test {
namespace {

std::set<std::string> listDir(const std::string &dir) {
  std::set<std::string> names;
  if (DIR *d = ::opendir(dir.c_str())) {
    while (struct dirent *e = ::readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
        names.insert(e->d_name);
    ::closedir(d);
  }
  return names;
}

std::string readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Status writeText(const std::string &path, const std::string &text,
                 const OutputOptions &options = {}) {
  return writeFileAtomically(
      path, [&](OutputFile &out) { return out.write(text.data(), text.size()); }, options);
}

/// Runs `body` in a child process; returns its wait status.
template <typename F> int inChild(F body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

TEST(OutputFile, CreatesThenReplacesAndLeavesNothingElse) {
  TempDir dir;
  std::string path = dir.file("out.bin");
  ASSERT_TRUE(writeText(path, "first").ok());
  ASSERT_TRUE(writeText(path, "second, longer").ok());
  EXPECT_EQ(readAll(path), "second, longer");
  EXPECT_EQ(listDir(dir.path()), std::set<std::string>{"out.bin"});
}

TEST(OutputFile, AFailedWriterKeepsTheOldFile) {
  TempDir dir;
  std::string path = dir.file("out.bin");
  ASSERT_TRUE(writeText(path, "old").ok());
  Status failed = writeFileAtomically(path, [](OutputFile &out) {
    MOEC_RETURN_IF_ERROR(out.write("new", 3));
    return Status::error("stopped");
  });
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(readAll(path), "old");
  EXPECT_EQ(listDir(dir.path()), std::set<std::string>{"out.bin"});
}

TEST(OutputFile, KeepsThePermissionsOfTheFileItReplaces) {
  TempDir dir;
  std::string path = dir.file("out.bin");
  ASSERT_TRUE(writeText(path, "old").ok());
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(writeText(path, "new").ok());
  struct stat info;
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

// Item 1: SIGINT / SIGTERM / SIGKILL in the middle of a write leave no file behind,
// with the unnamed temporary (O_TMPFILE) and with the named fallback.
void interruptedWriterLeavesNothing(bool named, int sig) {
  TempDir dir;
  std::string path = dir.file("model.plan");
  ASSERT_TRUE(writeText(path, "the old plan").ok());
  int status = inChild([&] {
    detail::forceNamedTemporaries(named);
    std::unique_ptr<OutputFile> out;
    if (!OutputFile::open(path, &out).ok())
      ::_exit(3);
    std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 4; ++i)
      if (!out->write(chunk.data(), chunk.size()).ok())
        ::_exit(4);
    ::raise(sig); // mid-write: nothing committed yet
    ::_exit(5);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), sig);
  std::set<std::string> left = listDir(dir.path());
  if (named && sig == SIGKILL) {
    // Nothing can run on SIGKILL: the named file stays until the next writer of
    // the same destination sweeps it (its process is gone).
    EXPECT_EQ(left.size(), 2u);
    ASSERT_TRUE(writeText(path, "the new plan").ok());
    left = listDir(dir.path());
  }
  EXPECT_EQ(left, std::set<std::string>{"model.plan"});
  EXPECT_EQ(readAll(path).rfind("the ", 0), 0u); // the old plan, or the sweeper's new one
}

TEST(OutputFile, SignalsDuringAWriteLeaveNothingUnnamed) {
  for (int sig : {SIGINT, SIGTERM, SIGKILL}) {
    SCOPED_TRACE(strsignal(sig));
    interruptedWriterLeavesNothing(false, sig);
  }
}

TEST(OutputFile, SignalsDuringAWriteLeaveNothingNamedFallback) {
  for (int sig : {SIGINT, SIGTERM, SIGKILL}) {
    SCOPED_TRACE(strsignal(sig));
    interruptedWriterLeavesNothing(true, sig);
  }
}

TEST(OutputFile, SweepsOnlyTemporariesOfDeadProcesses) {
  TempDir dir;
  // A pid that does not run: a child that has exited and been reaped.
  pid_t dead = ::fork();
  if (dead == 0)
    ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  std::string deadPid = std::to_string(dead), livePid = std::to_string(::getpid());
  for (const std::string &name :
       {"a.plan.moec-tmp-" + deadPid + "-0", "a.plan.moec-staged.tmp-" + deadPid,
        "a.plan.moec-tmp-" + livePid + "-7", "b.plan.moec-tmp-" + deadPid + "-0",
        std::string("a.plan.moec-tmp-notapid")})
    ASSERT_TRUE(writeText(dir.file(name), "debris").ok());
  EXPECT_EQ(detail::sweepStaleTemporaries(dir.path(), "a.plan"), 2);
  EXPECT_EQ(listDir(dir.path()),
            (std::set<std::string>{"a.plan.moec-tmp-" + livePid + "-7",
                                   "b.plan.moec-tmp-" + deadPid + "-0",
                                   "a.plan.moec-tmp-notapid"}));
}

// Item 2: a full disk. A 256 KiB tmpfs in a private mount namespace (needs root or
// CAP_SYS_ADMIN; skipped otherwise).
TEST(OutputFile, AFullDiskFailsWithOneLineAndKeepsTheOldFile) {
  TempDir dir;
  std::string report = dir.file("report");
  int status = inChild([&] {
    std::FILE *out = std::fopen(report.c_str(), "w");
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      std::fputs("SKIP", out);
      std::fclose(out);
      ::_exit(0);
    }
    std::string mnt = dir.file("small");
    ::mkdir(mnt.c_str(), 0755);
    if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k") != 0) {
      std::fputs("SKIP", out);
      std::fclose(out);
      ::_exit(0);
    }
    for (bool named : {false, true}) {
      detail::forceNamedTemporaries(named);
      std::string path = mnt + "/m.mlir";
      if (!writeText(path, "module {}\n").ok())
        ::_exit(3);
      Status full = writeText(path, std::string(1 << 20, 'x'));
      std::fprintf(out, "%s|%s|%zu\n", full.ok() ? "ok" : full.message().c_str(),
                   readAll(path).c_str(), listDir(mnt).size());
    }
    std::fclose(out);
  });
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  std::string text = readAll(report);
  if (text == "SKIP")
    GTEST_SKIP() << "no private mount namespace here (needs root): full-disk test skipped";
  std::string path = dir.file("small") + "/m.mlir";
  std::string line = path + ": write failed: No space left on device|module {}\n|1\n";
  EXPECT_EQ(text, line + line);
}

// Item 3: concurrent writers of one destination never share a temporary name; each
// succeeds, and the destination holds one writer's complete file.
TEST(OutputFile, ConcurrentWritersOfOneDestination) {
  TempDir dir;
  std::string path = dir.file("model.plan");
  constexpr int kWriters = 8, kRounds = 10;
  std::vector<pid_t> children;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string body(200000 + size_t(w) * 1000, char('a' + w));
      for (int r = 0; r < kRounds; ++r)
        if (!writeText(path, body).ok())
          ::_exit(1);
      ::_exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::string final = readAll(path);
  ASSERT_FALSE(final.empty());
  int w = final[0] - 'a';
  ASSERT_GE(w, 0);
  ASSERT_LT(w, kWriters);
  EXPECT_EQ(final, std::string(200000 + size_t(w) * 1000, char('a' + w)));
  EXPECT_EQ(listDir(dir.path()), std::set<std::string>{"model.plan"});
}

// Item 6: special files are written in place, never replaced; a symlink stays one.
TEST(OutputFile, DeviceDestinationsAreWrittenInPlace) {
  TempDir dir;
  std::string node = dir.file("null");
  if (::mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0)
    GTEST_SKIP() << "cannot create a device node here (needs root): test skipped";
  ASSERT_TRUE(writeText(node, "into the void").ok());
  struct stat info;
  ASSERT_EQ(::lstat(node.c_str(), &info), 0);
  EXPECT_TRUE(S_ISCHR(info.st_mode));
  EXPECT_EQ(listDir(dir.path()), std::set<std::string>{"null"});
  OutputOptions strict;
  strict.allowSpecial = false;
  EXPECT_EQ(writeText(node, "x", strict).message(), node + ": not a regular file");
}

TEST(OutputFile, AFifoDestinationIsWrittenInPlace) {
  TempDir dir;
  std::string fifo = dir.file("pipe"), got = dir.file("got");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  pid_t reader = ::fork();
  if (reader == 0) {
    std::string text = readAll(fifo); // blocks until the writer opens
    std::FILE *out = std::fopen(got.c_str(), "w");
    std::fputs(text.c_str(), out);
    std::fclose(out);
    ::_exit(0);
  }
  ASSERT_TRUE(writeText(fifo, "through the pipe").ok());
  ::waitpid(reader, nullptr, 0);
  EXPECT_EQ(readAll(got), "through the pipe");
  struct stat info;
  ASSERT_EQ(::lstat(fifo.c_str(), &info), 0);
  EXPECT_TRUE(S_ISFIFO(info.st_mode));
}

TEST(OutputFile, SymlinksStaySymlinks) {
  TempDir dir;
  std::string real = dir.file("real.npy"), link = dir.file("link.npy");
  ASSERT_TRUE(writeText(real, "old").ok());
  ASSERT_EQ(::symlink("real.npy", link.c_str()), 0);
  ASSERT_TRUE(writeText(link, "new").ok());
  struct stat info;
  ASSERT_EQ(::lstat(link.c_str(), &info), 0);
  EXPECT_TRUE(S_ISLNK(info.st_mode));
  EXPECT_EQ(readAll(real), "new");
  EXPECT_EQ(listDir(dir.path()), (std::set<std::string>{"link.npy", "real.npy"}));
}

TEST(OutputFile, StandardOutputOnlyWhereAllowed) {
  std::unique_ptr<OutputFile> out;
  EXPECT_EQ(OutputFile::open("-", &out).message(),
            "-: standard output is not a possible destination here; give a file name");
  OutputOptions options;
  options.allowStdout = true;
  ASSERT_TRUE(OutputFile::open("-", &out, options).ok());
  EXPECT_EQ(out->mode(), OutputFile::Mode::Stdout);
}

TEST(OutputFile, ADirectoryIsRefused) {
  TempDir dir;
  EXPECT_EQ(writeText(dir.path(), "x").message(), dir.path() + ": is a directory");
}

// Item 5: mapping a FIFO fails at once instead of waiting for a writer.
TEST(MappedFile, AFifoIsRefusedWithoutBlocking) {
  TempDir dir;
  std::string fifo = dir.file("model.plan");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  MappedFile mapped;
  Status status = MappedFile::open(fifo, &mapped);
  EXPECT_EQ(status.message(), fifo + ": not a regular file (a FIFO)");
}

// Item 8: a mapped file truncated under the process: one clear line, exit status 74.
TEST(MappedFile, TruncationUnderTheProcessIsOneClearLine) {
  TempDir dir;
  std::string path = dir.file("model.plan");
  ASSERT_TRUE(writeText(path, std::string(1 << 16, 'w')).ok());
  int pipeFds[2];
  ASSERT_EQ(::pipe(pipeFds), 0);
  int status = inChild([&] {
    ::dup2(pipeFds[1], STDERR_FILENO);
    installMappedFileFaultHandler();
    MappedFile mapped;
    if (!MappedFile::open(path, &mapped).ok())
      ::_exit(3);
    if (::truncate(path.c_str(), 0) != 0) // what `cp new.plan model.plan` does first
      ::_exit(4);
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < mapped.size(); i += 4096)
      sum = uint8_t(sum + mapped.data()[i]);
    ::_exit(5);
  });
  ::close(pipeFds[1]);
  std::string err;
  char buffer[512];
  for (ssize_t n; (n = ::read(pipeFds[0], buffer, sizeof(buffer))) > 0;)
    err.append(buffer, size_t(n));
  ::close(pipeFds[0]);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), kExitFileChanged);
  EXPECT_EQ(err, "moec: " + path +
                     ": the file changed while in use (it was truncated or rewritten in "
                     "place); replace a plan or weight file by writing a new file and "
                     "renaming it over the old one, as moec's own writers do\n");
}

} // namespace
} // namespace moec::test
