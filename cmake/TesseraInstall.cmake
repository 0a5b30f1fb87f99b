# Installs the engine, steps and headers as a CMake package, so that users can build
# their own steps against Tessera: find_package(tessera) then link tessera::engine.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set_target_properties(tessera_engine PROPERTIES EXPORT_NAME engine)
set_target_properties(tessera_steps PROPERTIES EXPORT_NAME steps)
install(TARGETS tessera_engine tessera_steps tessera_warnings tessera_hdf5 EXPORT tesseraTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS tessera RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY engine/include/tessera DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT tesseraTargets NAMESPACE tessera:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tessera)
file(WRITE ${PROJECT_BINARY_DIR}/tesseraConfig.cmake.in [=[
@PACKAGE_INIT@
include(CMakeFindDependencyMacro)
find_dependency(MPI COMPONENTS CXX)
find_dependency(tomlplusplus CONFIG)
# Private dependencies of the static libraries, needed at link time.
find_dependency(Boost 1.74 CONFIG COMPONENTS graph)
find_dependency(PkgConfig)
pkg_check_modules(CFITSIO REQUIRED IMPORTED_TARGET cfitsio)
include("${CMAKE_CURRENT_LIST_DIR}/tesseraTargets.cmake")
]=])
configure_package_config_file(${PROJECT_BINARY_DIR}/tesseraConfig.cmake.in ${PROJECT_BINARY_DIR}/tesseraConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tessera)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tesseraConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tesseraConfig.cmake ${PROJECT_BINARY_DIR}/tesseraConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tessera)
