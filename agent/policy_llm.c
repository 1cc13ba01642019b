/* The `llm` policy (K-Search): written against agent/llm/llm.h. */
#include "agent/agent_int.h"

kiln_err kiln_policy_llm(kiln_search *s)
{
	(void)s;
	return kiln_error_set(KILN_EUNSUPPORTED, "policy llm: not available yet");
}
