// Umbrella header of the Core runtime.
#pragma once

#include "core/context.hpp"
#include "core/deadline.hpp"
#include "core/error.hpp"
#include "core/export.hpp"
#include "core/id.hpp"
#include "core/log.hpp"
#include "core/options.hpp"
#include "core/registry.hpp"
#include "core/result.hpp"
#include "core/runtime.hpp"
#include "core/signal_context.hpp"
#include "core/value.hpp"
