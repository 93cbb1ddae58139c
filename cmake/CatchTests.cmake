# preflight_catch_tests(TARGET PREFIX): one CTest entry per visible Catch2 test case of TARGET,
# named PREFIX + the case's name, whatever characters the name holds.
#
# After every link, TARGET writes the entries itself (tests/unit/main.cpp, --write-ctest-file):
# it checks that each entry's filter selects exactly its own case and fails the build if not.
# CTest includes the file; before the first build an entry TARGET_NOT_BUILT fails instead.
function(preflight_catch_tests target prefix)
  set(cases "${CMAKE_CURRENT_BINARY_DIR}/${target}_cases.cmake")
  set(include "${CMAKE_CURRENT_BINARY_DIR}/${target}_include.cmake")
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${target} --write-ctest-file "${prefix}" "$<TARGET_FILE:${target}>" "${cases}"
    COMMENT "Writing the CTest entries of ${target}"
    VERBATIM)
  file(WRITE "${include}"
    "if(EXISTS \"${cases}\")\n"
    "  include(\"${cases}\")\n"
    "else()\n"
    "  add_test(${target}_NOT_BUILT ${target}_NOT_BUILT)\n"
    "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${include}")
endfunction()
