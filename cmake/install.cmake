# What `cmake --install build --prefix P` installs, and the Debian package
# `cpack -G DEB` makes of it (docs/install.md):
#
#   P/bin/qmc                                  the compiler
#   P/lib/qmc/<arch>-linux-gnu/libqmc_rt.a     the runtime, for each of QMC_MODEL_ARCHES
#   P/lib/qmc/<arch>-linux-gnu/libqmc_main.a   main() of compiled executables
#   P/lib/qmc/<arch>-linux-gnu/pkgconfig/qmc-runtime.pc   that runtime, for pkg-config
#   P/include/qmc_runtime.h                    the runtime's public API
#   P/lib/cmake/qmc/qmcConfig*.cmake           find_package(qmc), qmc_add_model()
#   P/lib/pkgconfig/qmc-runtime.pc             pkg-config, for the build machine's architecture
#   P/share/man/man1/qmc.1                     the man page, made from the --help texts
#   P/share/doc/qmc/                           README, docs/, examples/
#
# The directories are fixed (not GNUInstallDirs' multiarch lib/x86_64-linux-gnu):
# qmc finds its runtimes at ../lib/qmc from its own folder, so the prefix
# can be moved (compiler/codegen/link.c), and so can the package files, which
# find everything relative to themselves.
include(CMakePackageConfigHelpers)

install(TARGETS qmc RUNTIME DESTINATION bin)
install(FILES ${PROJECT_SOURCE_DIR}/include/qmc_runtime.h DESTINATION include)

foreach(arch ${QMC_MODEL_ARCHES})
  set(dir ${QMC_RUNTIME_LIB_DIR}/${arch}-linux-gnu)
  install(FILES ${dir}/libqmc_rt.a ${dir}/libqmc_main.a DESTINATION lib/qmc/${arch}-linux-gnu)
  set(QMC_PC_ARCH ${arch})
  set(QMC_PC_UP ../../../..)
  configure_file(cmake/qmc-runtime.pc.in ${dir}/pkgconfig/qmc-runtime.pc @ONLY)
  install(FILES ${dir}/pkgconfig/qmc-runtime.pc DESTINATION lib/qmc/${arch}-linux-gnu/pkgconfig)
endforeach()

# pkg-config's default path holds the build machine's architecture
if(CMAKE_SYSTEM_PROCESSOR IN_LIST QMC_MODEL_ARCHES)
  set(QMC_PC_ARCH ${CMAKE_SYSTEM_PROCESSOR})
  set(QMC_PC_UP ../..)
  configure_file(cmake/qmc-runtime.pc.in ${PROJECT_BINARY_DIR}/qmc-runtime.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/qmc-runtime.pc DESTINATION lib/pkgconfig)
endif()

# the CMake package; 0.x: a minor version may break, so 0.2 accepts 0.2.*
write_basic_package_version_file(${PROJECT_BINARY_DIR}/qmcConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES cmake/qmcConfig.cmake ${PROJECT_BINARY_DIR}/qmcConfigVersion.cmake
  DESTINATION lib/cmake/qmc)

# the man page, from the help texts of the qmc just built (not when qmc is
# cross-compiled and cannot run here)
if(NOT CMAKE_CROSSCOMPILING)
  set(man ${PROJECT_BINARY_DIR}/qmc.1)
  add_custom_command(OUTPUT ${man}
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
            sh ${PROJECT_SOURCE_DIR}/cmake/qmc-man.sh $<TARGET_FILE:qmc> ${PROJECT_VERSION} ${man}
    DEPENDS qmc ${PROJECT_SOURCE_DIR}/cmake/qmc-man.sh
    COMMENT "Writing the man page qmc.1" VERBATIM)
  add_custom_target(qmc_man ALL DEPENDS ${man})
  install(FILES ${man} DESTINATION share/man/man1)
endif()

install(FILES README.md DESTINATION share/doc/qmc)
install(DIRECTORY docs/ DESTINATION share/doc/qmc/docs FILES_MATCHING PATTERN "*.md" PATTERN "*.svg")
install(DIRECTORY examples/ DESTINATION share/doc/qmc/examples USE_SOURCE_PERMISSIONS)

# ---- the Debian package: cpack -G DEB (in the build folder) ---------------
# qmc_<version>_<arch>.deb installing to /usr. Its dependencies: the shared
# libraries qmc links (dpkg-shlibdeps finds libllvm19, libprotobuf-c1,
# libc6), and the tools `qmc compile` runs: clang-19 (links executables and
# shared libraries, with libc6-dev), llvm-19 (llvm-ar-19, for --emit lib).
# Cross-compiling for aarch64 needs the cross toolchain, recommended only.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME qmc)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "quantizing model compiler for x86-64 and aarch64")
set(CPACK_PACKAGE_DESCRIPTION "qmc compiles a model written in a small language, with its weights \
in a safetensors file, into native code for x86-64 or aarch64, quantizing the weights of linear \
layers to int8, int4 or FP8. It includes the runtime libraries compiled models link against, \
a CMake package (find_package(qmc), qmc_add_model()) and a pkg-config file (qmc-runtime).")
set(CPACK_PACKAGE_CONTACT "qmc developers <qmc@invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "clang-19, llvm-19")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user, pkg-config")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS cmake)
include(CPack)
