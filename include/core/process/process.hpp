// Umbrella header of the process service.
#pragma once

#include "core/core.hpp"
#include "core/process/daemon.hpp"
#include "core/process/managed_process.hpp"
#include "core/process/runner.hpp"
#include "core/process/service.hpp"
#include "core/process/signals.hpp"
#include "core/process/spawn_method.hpp"
#include "core/process/supervisor.hpp"
#include "core/process/types.hpp"
