package server

import "testing"

func TestControllerEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		list []string
		want bool
	}{
		{name: "star enables", list: []string{"*"}, want: true},
		{name: "named enables", list: []string{"namespace"}, want: true},
		{name: "other name does not", list: []string{"garbagecollector"}, want: false},
		{name: "minus disables despite star", list: []string{"*", "-namespace"}, want: false},
		{name: "empty disables", list: nil, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := controllerEnabled("namespace", tc.list); got != tc.want {
				t.Fatalf("controllerEnabled(namespace, %v) = %v, want %v", tc.list, got, tc.want)
			}
		})
	}
}
