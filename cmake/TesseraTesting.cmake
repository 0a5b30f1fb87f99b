# tessera_add_mpi_test(NAME SOURCES a.cpp b.cpp NP 1 2 3 [LIBS ...])
# Builds one GoogleTest binary and adds one ctest per rank count, run under mpiexec with
# the PROCESSORS property and the label "mpi". No test discovery: each ctest runs the
# whole binary on N ranks, and every rank must pass.
function(tessera_add_mpi_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;NP;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES} ${PROJECT_SOURCE_DIR}/tests/mpi/mpi_main.cpp)
  target_link_libraries(${name} PRIVATE tessera::steps tessera::engine GTest::gtest tessera_warnings ${ARG_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE TESSERA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  foreach(np IN LISTS ARG_NP)
    add_test(NAME ${name}.np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} --oversubscribe ${MPIEXEC_PREFLAGS}
                     $<TARGET_FILE:${name}> ${MPIEXEC_POSTFLAGS})
    set_tests_properties(${name}.np${np} PROPERTIES PROCESSORS ${np} LABELS mpi
      ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1"
      WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  endforeach()
endfunction()

# tessera_add_unit_test(NAME SOURCES a.cpp ...): one GoogleTest binary, tests discovered.
function(tessera_add_unit_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE tessera::steps tessera::engine GTest::gtest GTest::gtest_main tessera_warnings ${ARG_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE TESSERA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  gtest_discover_tests(${name} TEST_PREFIX "${name}." WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
    PROPERTIES ENVIRONMENT "TESSERA_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
