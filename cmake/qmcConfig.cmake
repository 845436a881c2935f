# qmcConfig.cmake: the CMake package of an installed qmc (docs/install.md).
#
#   find_package(qmc 0.2 REQUIRED)
#   qmc_add_model(digits_model MODEL digits.qm PRECISION int8)
#   add_executable(app app.c)
#   target_link_libraries(app PRIVATE digits_model)   # app.c: #include "digits_model.h"
#
# gives
#   qmc::qmc        the compiler (imported executable); QMC_EXECUTABLE is its path
#   qmc::runtime    the runtime for the architecture this project builds for
#                   (CMAKE_SYSTEM_PROCESSOR: a toolchain file for aarch64 gets
#                   the aarch64 one), with qmc_runtime.h on its include path
#   qmc_add_model() compiles a model at build time into a static library
# Relocatable: every path is found from this file's own location,
# PREFIX/lib/cmake/qmc.
if(CMAKE_VERSION VERSION_LESS 3.20)
  set(qmc_FOUND FALSE)
  set(qmc_NOT_FOUND_MESSAGE "qmc's package needs CMake 3.20 or newer (add_custom_command DEPFILE)")
  return()
endif()

# _qmc_paths(): sets _qmc_prefix, _qmc_exe, _qmc_include, _qmc_runtimes
# (PREFIX/lib/qmc) and _qmc_arches (the runtimes' <arch>-linux-gnu folders)
# from _qmc_list_dir, this file's folder, in the caller's scope: the
# functions below may be called from any folder of the project, where the
# variables find_package set are not visible.
macro(_qmc_paths)
  get_filename_component(_qmc_prefix "${_qmc_list_dir}/../../.." ABSOLUTE)
  set(_qmc_exe "${_qmc_prefix}/bin/qmc")
  set(_qmc_include "${_qmc_prefix}/include")
  set(_qmc_runtimes "${_qmc_prefix}/lib/qmc")
  file(GLOB _qmc_arches LIST_DIRECTORIES true RELATIVE "${_qmc_runtimes}" "${_qmc_runtimes}/*-linux-gnu")
endmacro()
set(_qmc_list_dir "${CMAKE_CURRENT_LIST_DIR}")
_qmc_paths()
set(QMC_EXECUTABLE "${_qmc_exe}")
set(QMC_INCLUDE_DIR "${_qmc_include}")

include(CMakeFindDependencyMacro)
find_dependency(Threads)

if(NOT TARGET qmc::qmc)
  add_executable(qmc::qmc IMPORTED)
  set_target_properties(qmc::qmc PROPERTIES IMPORTED_LOCATION "${_qmc_exe}")
endif()

# _qmc_arch(OUT NAME): the runtime's architecture for a CMAKE_SYSTEM_PROCESSOR
# value or the first part of a triple (x86_64, aarch64), or "" if none.
function(_qmc_arch out name)
  string(TOLOWER "${name}" n)
  if(n MATCHES "^(x86_64|amd64|x64)$")
    set(${out} x86_64 PARENT_SCOPE)
  elseif(n MATCHES "^(aarch64|arm64)$")
    set(${out} aarch64 PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

# _qmc_runtime_target(OUT ARCH): the imported runtime library for ARCH
# (qmc::runtime_ARCH, made on first use), or "" if qmc has no runtime for it.
function(_qmc_runtime_target out arch)
  set(_qmc_list_dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  _qmc_paths()
  set(lib "${_qmc_runtimes}/${arch}-linux-gnu/libqmc_rt.a")
  if(NOT arch OR NOT EXISTS "${lib}")
    set(${out} "" PARENT_SCOPE)
    return()
  endif()
  if(NOT TARGET qmc::runtime_${arch})
    if(NOT TARGET Threads::Threads) # not visible from this folder
      find_package(Threads REQUIRED)
    endif()
    add_library(qmc::runtime_${arch} STATIC IMPORTED)
    set_target_properties(qmc::runtime_${arch} PROPERTIES
      IMPORTED_LOCATION "${lib}"
      IMPORTED_LINK_INTERFACE_LANGUAGES C
      INTERFACE_INCLUDE_DIRECTORIES "${_qmc_include}"
      INTERFACE_LINK_LIBRARIES "Threads::Threads;m")
  endif()
  set(${out} qmc::runtime_${arch} PARENT_SCOPE)
endfunction()

_qmc_arch(_qmc_project_arch "${CMAKE_SYSTEM_PROCESSOR}")
_qmc_runtime_target(_qmc_rt "${_qmc_project_arch}")
if(NOT _qmc_rt)
  set(qmc_FOUND FALSE)
  set(qmc_NOT_FOUND_MESSAGE "qmc at ${_qmc_prefix} has runtimes for ${_qmc_arches}, "
    "none for this project's processor '${CMAKE_SYSTEM_PROCESSOR}'")
  return()
endif()
if(NOT TARGET qmc::runtime)
  add_library(qmc::runtime INTERFACE IMPORTED)
  set_target_properties(qmc::runtime PROPERTIES INTERFACE_LINK_LIBRARIES ${_qmc_rt})
endif()

# qmc_add_model(<target> MODEL file.qm [WEIGHTS file.safetensors] [PRECISION spec]
#               [CALIB name=file ...] [TARGET triple] [CPU name] [WEIGHTS_FILE ON]
#               [REPORT file.json] [OPTIONS arg ...])
#
# Compiles the model at build time (`qmc compile --emit obj`) into the static
# library <target>, whose header <target>.h is on its include path and which
# links the runtime of its architecture. The compile reruns when the model,
# its weights (named by WEIGHTS or by the model's `weights` statement), a
# calibration file or qmc changes, and for nothing else (qmc writes the
# dependencies: --depfile). Relative paths are relative to the current
# source folder, REPORT's to the current binary folder.
#   TARGET    a triple (default: this project's processor, x86_64-linux-gnu
#             or aarch64-linux-gnu)
#   CPU       an LLVM CPU name; default: qmc's (the build machine's CPU for
#             the host, the architecture's baseline for a cross target)
#   WEIGHTS_FILE ON  keep the weights in a file beside the library, named by
#             the target's QMC_WEIGHTS_FILE property (qmc_load_weights)
#   OPTIONS   more `qmc compile` arguments, as they are
# The target's properties QMC_HEADER, QMC_OBJECT, QMC_WEIGHTS_FILE name what
# was generated.
function(qmc_add_model target)
  cmake_parse_arguments(PARSE_ARGV 1 Q "" "MODEL;WEIGHTS;PRECISION;TARGET;CPU;WEIGHTS_FILE;REPORT"
    "CALIB;OPTIONS")
  set(_qmc_list_dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  _qmc_paths()
  if(Q_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "qmc_add_model(${target}): unknown arguments: ${Q_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT Q_MODEL)
    message(FATAL_ERROR "qmc_add_model(${target}): MODEL file.qm is required")
  endif()
  get_filename_component(model "${Q_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(Q_TARGET)
    string(REGEX MATCH "^[^-]+" name "${Q_TARGET}")
    set(triple ${Q_TARGET})
  else()
    set(name "${CMAKE_SYSTEM_PROCESSOR}")
  endif()
  _qmc_arch(arch "${name}")
  _qmc_runtime_target(runtime "${arch}")
  if(NOT runtime)
    message(FATAL_ERROR "qmc_add_model(${target}): qmc has no runtime for '${name}' "
      "(it has: ${_qmc_arches})")
  endif()
  if(NOT Q_TARGET)
    set(triple ${arch}-linux-gnu)
  endif()

  set(dir "${CMAKE_CURRENT_BINARY_DIR}/qmc/${target}")
  set(base "${dir}/${target}")
  set(args compile "${model}" --emit obj -o "${base}" --target "${triple}" --depfile "${base}.d")
  set(outputs "${base}.o" "${base}.h")
  set(deps "${model}" "${_qmc_exe}")
  if(Q_WEIGHTS)
    get_filename_component(w "${Q_WEIGHTS}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND args --weights "${w}")
    list(APPEND deps "${w}")
  endif()
  if(Q_PRECISION)
    list(APPEND args --precision "${Q_PRECISION}")
  endif()
  foreach(c ${Q_CALIB})
    if(NOT c MATCHES "^([^=]+)=(.+)$")
      message(FATAL_ERROR "qmc_add_model(${target}): CALIB takes name=file, not '${c}'")
    endif()
    get_filename_component(f "${CMAKE_MATCH_2}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND args --calib "${CMAKE_MATCH_1}=${f}")
    list(APPEND deps "${f}")
  endforeach()
  if(Q_CPU)
    list(APPEND args --cpu "${Q_CPU}")
  endif()
  set(weights_file "")
  if(Q_WEIGHTS_FILE)
    set(weights_file "${base}.weights")
    list(APPEND args --weights-file "${weights_file}")
    list(APPEND outputs "${weights_file}")
  endif()
  if(Q_REPORT)
    get_filename_component(r "${Q_REPORT}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
    list(APPEND args --report "${r}")
    list(APPEND outputs "${r}")
  endif()
  list(APPEND args ${Q_OPTIONS})

  add_custom_command(OUTPUT ${outputs}
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${dir}"
    COMMAND "${_qmc_exe}" ${args}
    DEPENDS ${deps}
    DEPFILE "${base}.d"
    COMMENT "qmc: compiling model ${target} (${triple})"
    VERBATIM)
  add_library(${target} STATIC "${base}.o" "${base}.h")
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT "C" IN_LIST languages AND "CXX" IN_LIST languages)
    set(language CXX) # the header is C++-ready (extern "C")
  else()
    set(language C)
  endif()
  set_target_properties(${target} PROPERTIES
    LINKER_LANGUAGE ${language}
    QMC_HEADER "${base}.h"
    QMC_OBJECT "${base}.o"
    QMC_WEIGHTS_FILE "${weights_file}")
  target_include_directories(${target} PUBLIC "${dir}")
  target_link_libraries(${target} PUBLIC ${runtime})
endfunction()

set(qmc_FOUND TRUE)
