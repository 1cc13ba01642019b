/* kiln's selection of the next action: the LLM's score leads, a UCB-style exploration term
 * lifts nodes and families tried less, stale attempts (no improvement) cost a penalty; ties
 * are broken by a seeded hash so a run is reproducible. Also the noise margin that decides
 * whether a timing is a new best. */
#include "worldmodel/wm_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define TIE_EPS 1e-12

bool kiln_wm_is_new_best(double old_us, double old_spread_us, double new_us, double new_spread_us,
			 bool modeled, double tie_band)
{
	if (!isfinite(new_us) || !(new_us > 0))
		return false;
	if (!isfinite(old_us) || !(old_us > 0))
		return true;
	double margin;
	if (modeled) {
		if (!isfinite(tie_band) || !(tie_band >= 0))
			tie_band = KILN_WM_TIE_BAND_DEFAULT;
		margin = tie_band * old_us;
	} else {
		double a = isfinite(old_spread_us) && old_spread_us > 0 ? old_spread_us : 0;
		double b = isfinite(new_spread_us) && new_spread_us > 0 ? new_spread_us : 0;
		margin = a > b ? a : b;
	}
	return old_us - new_us > margin;
}

static uint64_t tie_key(uint64_t seed, int64_t id)
{
	uint64_t z = seed ^ ((uint64_t)id * 0x9e3779b97f4a7c15ull);
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

typedef struct ranked {
	kiln_wm_choice c;
	uint64_t key;
} ranked;

static int by_total(const void *pa, const void *pb)
{
	const ranked *a = pa, *b = pb;
	if (fabs(a->c.total - b->c.total) > TIE_EPS)
		return a->c.total > b->c.total ? -1 : 1;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->c.id < b->c.id ? -1 : a->c.id > b->c.id;
}

kiln_err kiln_wm_rank(kiln_wm_choice **out, size_t *n, const kiln_wm *wm,
		      const kiln_wm_select_options *opt)
{
	kiln_wm_select_options o = KILN_WM_SELECT_OPTIONS_INIT;
	if (opt)
		o = *opt;
	*out = NULL;
	*n = 0;
	int64_t *front = NULL, *fam = NULL, *fam_att = NULL, *pend = NULL;
	size_t nf = 0;
	ranked *r = NULL;
	kiln_err e = kiln_wm_frontier(&front, &nf, wm);
	if (e || !nf)
		goto done;
	e = KILN_ENOMEM;
	/* family of every node and attempts per family, indexed like wm->nodes */
	if (!(fam = kiln_calloc(wm->n, sizeof(*fam))) || !(fam_att = kiln_calloc(wm->n, sizeof(*fam_att))) ||
	    !(r = kiln_calloc(nf, sizeof(*r))))
		goto done;
	int64_t total = 0;
	if (!(pend = kiln_calloc(wm->n, sizeof(*pend))))
		goto done;
	for (size_t k = 0; k < o.npending; k++) { /* in flight: a visit whose result is not in yet */
		const wm_node *x = wmi_find(wm, o.pending[k]);
		if (x)
			pend[x - wm->nodes]++;
	}
	for (size_t i = 1; i < wm->n; i++) {
		total += wm->nodes[i].attempts + pend[i];
		fam[i] = kiln_wm_family_of(wm, wm->nodes[i].id);
	}
	for (size_t i = 1; i < wm->n; i++) {
		const wm_node *f = wmi_find(wm, fam[i]);
		if (f)
			fam_att[f - wm->nodes] += wm->nodes[i].attempts + pend[i];
	}
	double lnN = log((double)total + 1);
	for (size_t k = 0; k < nf; k++) {
		const wm_node *x = wmi_find(wm, front[k]);
		size_t xi = (size_t)(x - wm->nodes);
		const wm_node *f = wmi_find(wm, fam[xi]);
		int64_t fa = f ? fam_att[f - wm->nodes] : 0;
		kiln_wm_choice *c = &r[k].c;
		c->id = x->id;
		c->family = fam[xi];
		c->score = x->score;
		c->pending = pend[xi];
		c->attempts = x->attempts + pend[xi];
		c->family_attempts = fa;
		c->total_attempts = total;
		c->stale = x->stale;
		c->explore = o.c_explore * sqrt(lnN / ((double)c->attempts + 1));
		c->family_bonus = o.c_family * sqrt(lnN / ((double)fa + 1));
		c->penalty = o.stale_penalty * (double)x->stale;
		c->total = c->score + c->explore + c->family_bonus - c->penalty;
		r[k].key = tie_key(o.seed, x->id);
	}
	qsort(r, nf, sizeof(*r), by_total);
	kiln_wm_choice *res = kiln_malloc(nf * sizeof(*res));
	if (!res)
		goto done;
	for (size_t k = 0; k < nf; k++)
		res[k] = r[k].c;
	*out = res;
	*n = nf;
	e = KILN_OK;
done:
	free(r);
	free(pend);
	free(fam_att);
	free(fam);
	free(front);
	return e;
}

kiln_err kiln_wm_select(kiln_wm_choice *out, const kiln_wm *wm, const kiln_wm_select_options *opt)
{
	kiln_wm_choice *all = NULL;
	size_t n = 0;
	kiln_err e = kiln_wm_rank(&all, &n, wm, opt);
	if (e)
		return e;
	size_t k = 0;
	while (k < n && all[k].pending > 0)
		k++;
	if (k < n)
		*out = all[k];
	free(all);
	if (!n)
		return kiln_error_set(KILN_ENOTFOUND, "world model: the frontier is empty (no open node "
				      "under a solved one)");
	if (k == n)
		return kiln_error_set(KILN_ENOTFOUND, "world model: every frontier action (%zu) is in flight", n);
	return KILN_OK;
}

kiln_err kiln_wm_choice_explain(char **out, const kiln_wm_choice *c)
{
	*out = kiln_asprintf("#%lld: score %.2f + explore %.2f + family %.2f - stale %.2f = %.2f "
			     "(attempts: node %lld, family #%lld %lld, all %lld; %lld since its last improvement)",
			     (long long)c->id, c->score, c->explore, c->family_bonus, c->penalty, c->total,
			     (long long)c->attempts, (long long)c->family, (long long)c->family_attempts,
			     (long long)c->total_attempts, (long long)c->stale);
	return *out ? KILN_OK : KILN_ENOMEM;
}
