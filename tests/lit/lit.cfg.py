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

if shutil.which("tmux"):
    config.available_features.add("tmux")
if shutil.which("ptxas") or os.path.exists("/usr/local/cuda/bin/ptxas"):
    config.available_features.add("ptxas")
