// Subcommand entry points of the deepserve binary. Each parses its own flags (CLI11) from
// argv (argv[0] is the subcommand name) and returns the process exit code. Flag errors print a
// message naming the flag and return 2.
#pragma once

namespace ds {
int serve_command(int argc, char** argv);       // src/server/serve_command.cpp
int make_model_command(int argc, char** argv);  // src/tools/make_model_command.cpp
}  // namespace ds
