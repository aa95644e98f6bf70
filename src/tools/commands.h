// Subcommand entry points of the deepserve binary. Each parses its own flags (CLI11) from
// argv (argv[0] is the subcommand name) and returns the process exit code. Flag errors print a
// message naming the flag and return 2.
#pragma once

namespace ds {
int serve_command(int argc, char** argv);       // src/server/serve_command.cpp
int make_model_command(int argc, char** argv);  // src/tools/make_model_command.cpp
int bench_command(int argc, char** argv);       // src/tools/bench_command.cpp
int eval_command(int argc, char** argv);        // src/tools/eval_command.cpp (gsm8k | mmlu)
}  // namespace ds
