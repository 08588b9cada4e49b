# lit configuration for moec's IR, pass and codegen tests.
import os
import shutil

import lit.formats

config.name = "moec"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py.in"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moec_obj_root, "tests", "lit")

# moec's tools first, then the packaged LLVM's FileCheck/not.
config.environment["PATH"] = os.pathsep.join(
    [config.moec_tools_dir, config.llvm_tools_dir, os.environ.get("PATH", "")])
config.environment["FILECHECK_OPTS"] = "--enable-var-scope"

# The Python running lit runs the tests' helper scripts (standard library only).
import sys
config.substitutions.append(("%python", sys.executable))

# A private mount namespace with a small tmpfs (root, and not every chroot or
# container allows it): tests/lit/Driver/full-disk.test needs one.
import subprocess
_tmpfs_probe = ('d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; '
                'rc=$?; rmdir "$d"; exit $rc')
if shutil.which("unshare") and subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", _tmpfs_probe],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
    config.available_features.add("private-tmpfs")
if shutil.which("tmux"):
    config.available_features.add("tmux")
if shutil.which("ptxas") or os.path.exists("/usr/local/cuda/bin/ptxas"):
    config.available_features.add("ptxas")
if os.path.exists(os.path.join(config.moec_tools_dir, "moec_gpu_bench")):
    config.available_features.add("moec-gpu-bench")
