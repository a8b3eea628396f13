/* SPDX-License-Identifier: MIT */
/* Shared inside src/dnssec only. */
#pragma once

#include <stdlib.h>

#include "gslb/core.h"
#include "gslb/dnssec.h"
