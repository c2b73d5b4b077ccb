/* SPDX-License-Identifier: MIT */
/* Cross-field rules of a site: what the YAML shape alone cannot say. Pure. */
#ifndef MCPSEC_VALIDATE_H
#define MCPSEC_VALIDATE_H

struct mc_diags;
struct mc_site;

/* Adds every error and warning to ds; tolerates a partial model. Returns 0 or -EINVAL. */
int mc_site_validate(const struct mc_site *s, struct mc_diags *ds);

#endif
