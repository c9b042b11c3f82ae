package configmap

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

type fieldErr struct {
	Type   field.ErrorType
	Field  string
	Detail string
}

func summarize(errs field.ErrorList) []fieldErr {
	var out []fieldErr
	for _, e := range errs {
		out = append(out, fieldErr{Type: e.Type, Field: e.Field, Detail: e.Detail})
	}
	return out
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cm   corev1.ConfigMap
		want []fieldErr
	}{
		{name: "valid", cm: corev1.ConfigMap{Data: map[string]string{"app.properties": "a=b", "_x-y.z": ""}}},
		{
			name: "bad key",
			cm:   corev1.ConfigMap{Data: map[string]string{"a/b": "x"}},
			want: []fieldErr{{field.ErrorTypeInvalid, "data[a/b]", "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"}},
		},
		{
			name: "key in data and binaryData",
			cm:   corev1.ConfigMap{Data: map[string]string{"k": "x"}, BinaryData: map[string][]byte{"k": {1}}},
			want: []fieldErr{{field.ErrorTypeInvalid, "data[k]", "duplicate of key present in binaryData"}},
		},
		{
			name: "too large",
			cm:   corev1.ConfigMap{BinaryData: map[string][]byte{"k": make([]byte, MaxSize+1)}},
			// kube reports the whole object as field.NewPath(""), which prints as "[]".
			want: []fieldErr{{field.ErrorTypeTooLong, "[]", "may not be more than 1048576 bytes"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cm := tc.cm.DeepCopy()
			cm.ObjectMeta = metav1.ObjectMeta{Name: "cfg", Namespace: "default"}
			Strategy{}.Default(cm)
			if diff := cmp.Diff(tc.want, summarize(Strategy{}.Validate(context.Background(), cm))); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	cm := &corev1.ConfigMap{}
	Strategy{}.Default(cm)
	if cm.Data == nil {
		t.Errorf("data not defaulted to an empty map")
	}
}

func TestValidateUpdate(t *testing.T) {
	immutable := true
	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default", ResourceVersion: "1"},
		Data: map[string]string{"a": "1"}, Immutable: &immutable}
	tests := []struct {
		name   string
		mutate func(cm *corev1.ConfigMap)
		want   []fieldErr
	}{
		{name: "labels may change", mutate: func(cm *corev1.ConfigMap) { cm.Labels = map[string]string{"x": "y"} }},
		{
			name:   "data frozen",
			mutate: func(cm *corev1.ConfigMap) { cm.Data["a"] = "2" },
			want:   []fieldErr{{field.ErrorTypeForbidden, "data", "field is immutable when `immutable` is set"}},
		},
		{
			name:   "immutable cannot be unset",
			mutate: func(cm *corev1.ConfigMap) { cm.Immutable = nil },
			want:   []fieldErr{{field.ErrorTypeForbidden, "immutable", "field is immutable when `immutable` is set"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cm := old.DeepCopy()
			tc.mutate(cm)
			Strategy{}.PrepareForUpdate(context.Background(), cm, old)
			if diff := cmp.Diff(tc.want, summarize(Strategy{}.ValidateUpdate(context.Background(), cm, old))); diff != "" {
				t.Errorf("ValidateUpdate (-want +got):\n%s", diff)
			}
		})
	}
}
