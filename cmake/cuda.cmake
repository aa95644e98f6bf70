# CUDA backend (docs/cuda.md, issue 8). Included from CMakeLists.txt after the CPU layers exist.
#
# DEEPSERVE_CUDA=ON (default): if a CUDA compiler is found (CUDACXX, PATH, or /usr/local/cuda),
# build the static library `deepserve_cuda` from src/kernels/*.cu for Hopper only
# (-gencode=arch=compute_90a,code=sm_90a, static cudart) and the GPU test drivers under
# tests/gpu/. GPU tests are never registered with ctest (CI has nvcc but no GPU): they are run by
# tests/gpu/run_all.sh on the device machine. DEEPSERVE_CUDA=OFF, or no nvcc: CPU-only build.
option(DEEPSERVE_CUDA "Build the CUDA backend (deepserve_cuda) when a CUDA compiler is found" ON)
set(DEEPSERVE_HAVE_CUDA OFF)

if(DEEPSERVE_CUDA)
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    find_program(_ds_nvcc nvcc)
    if(NOT _ds_nvcc)
      set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # The target architecture is given explicitly per target below (sm_90a needs -gencode).
    set(CMAKE_CUDA_ARCHITECTURES OFF)
    set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(DEEPSERVE_HAVE_CUDA ON)
    message(STATUS "deepserve: CUDA ${CMAKE_CUDA_COMPILER_VERSION} found, building deepserve_cuda for sm_90a")
  else()
    message(STATUS "deepserve: no CUDA compiler found, CPU-only build")
  endif()
else()
  message(STATUS "deepserve: DEEPSERVE_CUDA=OFF, CPU-only build")
endif()

if(DEEPSERVE_HAVE_CUDA)
  set(DEEPSERVE_CUDA_GENCODE "-gencode=arch=compute_90a,code=sm_90a")
  # The directory-wide options (-Wall -Wextra, sanitizers) are GCC flags that nvcc rejects: each
  # CUDA-side target replaces them with per-language equivalents.
  function(deepserve_cuda_flags t)
    set_property(TARGET ${t} PROPERTY COMPILE_OPTIONS "")
    target_compile_options(${t} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>
      $<$<COMPILE_LANGUAGE:CUDA>:${DEEPSERVE_CUDA_GENCODE} -lineinfo -Xcompiler=-Wall,-Wextra
                                 --expt-relaxed-constexpr>)
    set_target_properties(${t} PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON
                                          CUDA_RUNTIME_LIBRARY Static)
  endfunction()

  file(GLOB ds_cuda_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/kernels/*.cu)
  add_library(deepserve_cuda STATIC ${ds_cuda_srcs})
  deepserve_cuda_flags(deepserve_cuda)
  target_include_directories(deepserve_cuda PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(deepserve_cuda PUBLIC CUDA::cudart_static)
  target_compile_definitions(deepserve_cuda PUBLIC DEEPSERVE_HAVE_CUDA=1)

  # CUDA model runner (src/cuda/*.cpp, docs/cuda.md "Model runner"): host C++20 over the kernels.
  # It registers the "cuda" device backend at static initialization (src/engine/device_backend.h),
  # so executables link it whole-archive through deepserve_link_cuda_runner().
  file(GLOB ds_cuda_runner_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/*.cpp)
  add_library(ds_cuda_runner STATIC ${ds_cuda_runner_srcs})
  target_link_libraries(ds_cuda_runner PUBLIC deepserve_cuda ds_engine ds_model CUDA::cudart_static)

  # GPU test drivers: tests/gpu/gpu_*.{cu,cpp}, one executable each, in <build>/gpu/. Built with
  # `all` so CI compiles them; not added to ctest. They must run on the device machine without
  # the Debian shared libraries of this machine: static cudart, static libstdc++, --as-needed
  # (the CPU twins they link use none of fmt/spdlog). tests/gpu/run_all.sh checks with ldd.
  file(GLOB ds_gpu_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/gpu/gpu_*.cu
                                           ${CMAKE_CURRENT_SOURCE_DIR}/tests/gpu/gpu_*.cpp)
  if(DEEPSERVE_SANITIZE)  # the drivers are for the device machine; the sanitizer runtime is not there
    set(ds_gpu_tests "")
  endif()
  foreach(src ${ds_gpu_tests})
    get_filename_component(t ${src} NAME_WE)
    add_executable(${t} ${src})
    deepserve_cuda_flags(${t})
    target_link_libraries(${t} PRIVATE deepserve_cuda ds_kernels_cpu CUDA::cudart_static)
    if(t STREQUAL "gpu_model" OR t STREQUAL "gpu_bench_model" OR t STREQUAL "gpu_fullwidth" OR t STREQUAL "gpu_graphs"
       OR t STREQUAL "gpu_oracle")
      # The whole-model drivers link the runner and the CPU engine, whose spdlog/fmt are Debian shared
      # libraries: they run with tests/gpu/collect_libs.sh's lib/ (shared libstdc++ there, so one copy).
      target_link_libraries(${t} PRIVATE $<LINK_LIBRARY:WHOLE_ARCHIVE,ds_cuda_runner> ds_engine ds_model ds_tools)
    else()
      target_link_options(${t} PRIVATE -Wl,--as-needed -static-libstdc++ -static-libgcc)
    endif()
    set_target_properties(${t} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/gpu)
    target_compile_definitions(${t} PRIVATE DEEPSERVE_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
  endforeach()
endif()

# Links the CUDA runner into an executable when it exists (whole-archive: its static registration of
# the "cuda" device backend must be kept). A CPU-only build links nothing.
function(deepserve_link_cuda_runner t)
  if(TARGET ds_cuda_runner)
    target_link_libraries(${t} PRIVATE $<LINK_LIBRARY:WHOLE_ARCHIVE,ds_cuda_runner>)
    target_compile_definitions(${t} PRIVATE DEEPSERVE_CUDA_RUNNER=1)
  endif()
endfunction()

# D33: committed GPU results (bench/gpu/*.md) name the sources they measured and their sha256; this
# CPU-only check fails once those sources change without a new measurement. Runs in CI.
file(GLOB ds_gpu_tables CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/bench/gpu/*.md)
find_program(DS_BASH bash)
find_program(DS_SHA256SUM sha256sum)
if(ds_gpu_tables AND DS_BASH AND DS_SHA256SUM)
  add_test(NAME gpu_results_fresh
           COMMAND ${DS_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/tests/gpu/source_hash.sh --check ${ds_gpu_tables})
  set_tests_properties(gpu_results_fresh PROPERTIES LABELS unit)
endif()
