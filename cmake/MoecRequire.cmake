# Required external dependencies, each found with a failure that names its Debian
# package, e.g.
#   moec: OpenMP for clang-22 not found: install the Debian package libomp-22-dev (scripts/setup.sh installs everything)
# scripts/setup.sh installs every package named here; keep the two in step.
#
#   moec_find_package(<Name> DEBIAN <package> [WHAT <text>] <find_package arguments>...)
#   moec_find_program(<VAR> DEBIAN <package> [WHAT <text>] <find_program arguments>...)
#   moec_find_library(<VAR> DEBIAN <package> [WHAT <text>] <find_library arguments>...)
#   moec_find_path(<VAR> DEBIAN <package> [WHAT <text>] <find_path arguments>...)
#   moec_require(<condition variable> DEBIAN <package> WHAT <text>)
# The find_* forms take the same arguments as CMake's own (REQUIRED is implied);
# WHAT defaults to <Name> or to the program or library searched for. They are
# macros, so what a package's config or find module sets stays in the caller's
# scope. Optional things (ccache, ptxas) do not go through these.
include_guard(GLOBAL)

function(moec_require var)
  cmake_parse_arguments(PARSE_ARGV 1 _moec_req "" "DEBIAN;WHAT" "")
  if(NOT ${var})
    # The leading space keeps the sentence on one line (CMake wraps other lines).
    message(FATAL_ERROR " moec: ${_moec_req_WHAT} not found: install the Debian package "
                        "${_moec_req_DEBIAN} (scripts/setup.sh installs everything)")
  endif()
endfunction()

macro(moec_find_package _moec_name)
  cmake_parse_arguments(_moec_fp "" "DEBIAN;WHAT" "" ${ARGN})
  if(NOT _moec_fp_WHAT)
    set(_moec_fp_WHAT ${_moec_name})
  endif()
  set(_moec_fp_args ${_moec_fp_UNPARSED_ARGUMENTS})
  list(REMOVE_ITEM _moec_fp_args REQUIRED)
  find_package(${_moec_name} ${_moec_fp_args})
  moec_require(${_moec_name}_FOUND DEBIAN "${_moec_fp_DEBIAN}" WHAT "${_moec_fp_WHAT}")
endmacro()

# find_program / find_library / find_path with the same DEBIAN/WHAT arguments; `kind` is
# "program" or "library".
macro(_moec_find_one kind _moec_var)
  cmake_parse_arguments(_moec_fp "" "DEBIAN;WHAT" "" ${ARGN})
  if(NOT _moec_fp_WHAT)
    list(GET _moec_fp_UNPARSED_ARGUMENTS 0 _moec_fp_WHAT)
  endif()
  set(_moec_fp_args ${_moec_fp_UNPARSED_ARGUMENTS})
  list(REMOVE_ITEM _moec_fp_args REQUIRED)
  cmake_language(CALL find_${kind} ${_moec_var} ${_moec_fp_args})
  moec_require(${_moec_var} DEBIAN "${_moec_fp_DEBIAN}" WHAT "${_moec_fp_WHAT}")
endmacro()

macro(moec_find_program _moec_var)
  _moec_find_one(program ${_moec_var} ${ARGN})
endmacro()

macro(moec_find_library _moec_var)
  _moec_find_one(library ${_moec_var} ${ARGN})
endmacro()

macro(moec_find_path _moec_var)
  _moec_find_one(path ${_moec_var} ${ARGN})
endmacro()

# OpenMP comes with the compiler: GCC's libgomp is in libgcc-<major>-dev, clang's
# libomp in libomp-<major>-dev (the fuzz sub-builds use clang-22).
string(REGEX MATCH "^[0-9]+" MOEC_CXX_MAJOR "${CMAKE_CXX_COMPILER_VERSION}")
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  set(MOEC_OPENMP_DEBIAN "libomp-${MOEC_CXX_MAJOR}-dev")
  set(MOEC_OPENMP_WHAT "OpenMP for clang-${MOEC_CXX_MAJOR}")
else()
  set(MOEC_OPENMP_DEBIAN "libgcc-${MOEC_CXX_MAJOR}-dev")
  set(MOEC_OPENMP_WHAT "OpenMP for g++-${MOEC_CXX_MAJOR}")
endif()
