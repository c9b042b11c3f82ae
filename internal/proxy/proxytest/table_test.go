package proxytest

import (
	"slices"
	"strings"
	"testing"
)

// TestCases_Table checks the table itself (no kernel needed): at least 40 cases with unique
// names, each naming a spec rule, pointing at pods and Services of the world, with a reason
// for every deviation.
func TestCases_Table(t *testing.T) {
	cases := Cases()
	if n := len(cases) + len(Dynamic()); n < 40 {
		t.Errorf("%d cases, issue 6 asks for at least 40", n)
	}
	svcs := map[string]bool{}
	for _, s := range services() {
		svcs[s.Name] = true
	}
	podNames := map[string]bool{}
	for _, p := range pods {
		podNames[p.name] = true
	}
	for name := range wantEndpoints() {
		if !svcs[name] {
			t.Errorf("wantEndpoints names service %q that the world does not create", name)
		}
	}
	seen := map[string]bool{}
	for _, d := range Dynamic() {
		seen[d.Name] = true
	}
	for _, c := range cases {
		if seen[c.Name] {
			t.Errorf("duplicate case name %q", c.Name)
		}
		seen[c.Name] = true
		if c.Rule == "" {
			t.Errorf("%s: no spec rule", c.Name)
		}
		if c.To.kind == toProxyHealthz || c.To.kind == toProxyMetrics {
			// no Service
		} else if c.To.kind == toPodIP {
			if !podNames[c.To.svc] {
				t.Errorf("%s: no pod %s", c.Name, c.To.svc)
			}
		} else if !svcs[c.To.svc] {
			t.Errorf("%s: no service %s", c.Name, c.To.svc)
		}
		if c.From.kind == fromPod && !podNames[c.From.pod] {
			t.Errorf("%s: no pod %s", c.Name, c.From.pod)
		}
		exps := []Expect{c.Expect}
		if c.Userspace != nil {
			if strings.TrimSpace(c.Userspace.Why) == "" {
				t.Errorf("%s: userspace deviation without a reason", c.Name)
			}
			exps = append(exps, c.Userspace.Expect)
		}
		for _, e := range exps {
			for _, ep := range e.Endpoints {
				if !podNames[ep] {
					t.Errorf("%s: endpoint %s is not a pod of the world", c.Name, ep)
				}
			}
			switch e.Outcome {
			case Reaches, ReachesEvery, Sticks:
				if len(e.Endpoints) == 0 {
					t.Errorf("%s: %s nothing", c.Name, e.Outcome)
				}
			}
		}
	}
	for _, want := range []string{"PX-T-01", "PX-T-02", "PX-T-03", "PX-T-04", "PX-A-01", "PX-H-01", "PX-M-03(a)", "PX-F-01", "PX-01", "EP-S-05", "PX-E-01", "PX-C-01"} {
		if !slices.ContainsFunc(append(cases, Case{Rule: dynamicRules()}), func(c Case) bool { return strings.Contains(c.Rule, want) }) {
			t.Errorf("no case checks %s", want)
		}
	}
}

func dynamicRules() string {
	var s []string
	for _, d := range Dynamic() {
		s = append(s, d.Rule)
	}
	return strings.Join(s, " ")
}
