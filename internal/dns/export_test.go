package dns

// Test helpers for the external test package (integration_test.go).
var (
	Dig               = dig
	ZoneText          = zoneText
	StartTestUpstream = startTestUpstream
	MetricValue       = metricValue
)

// Addr is the upstream's "ip:port".
func (u *testUpstream) Addr() string { return u.addr }

// Queries is the number of questions the upstream got.
func (u *testUpstream) Queries() int64 { return u.queries.Load() }
