package secret

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
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

func TestDefault(t *testing.T) {
	s := &corev1.Secret{Data: map[string][]byte{"a": []byte("old"), "b": []byte("kept")}, StringData: map[string]string{"a": "new", "c": "added"}}
	Strategy{}.Default(s)
	want := &corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"a": []byte("new"), "b": []byte("kept"), "c": []byte("added")}}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("Default (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		s    corev1.Secret
		want []fieldErr
	}{
		{name: "opaque", s: corev1.Secret{Data: map[string][]byte{"password": []byte("x")}}},
		{
			name: "tls needs cert and key",
			s:    corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil}},
			want: []fieldErr{{field.ErrorTypeRequired, "data[tls.key]", ""}},
		},
		{
			name: "dockerconfigjson must be JSON",
			s:    corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte("{")}},
			want: []fieldErr{{field.ErrorTypeInvalid, "data[.dockerconfigjson]", "unexpected end of JSON input"}},
		},
		{
			name: "service account token needs annotation",
			s:    corev1.Secret{Type: corev1.SecretTypeServiceAccountToken},
			want: []fieldErr{{field.ErrorTypeRequired, "metadata.annotations[kubernetes.io/service-account.name]", ""}},
		},
		{
			name: "basic auth needs username or password",
			s:    corev1.Secret{Type: corev1.SecretTypeBasicAuth},
			want: []fieldErr{{field.ErrorTypeRequired, "data[username]", ""}, {field.ErrorTypeRequired, "data[password]", ""}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s.DeepCopy()
			s.ObjectMeta = metav1.ObjectMeta{Name: "s", Namespace: "default"}
			Strategy{}.Default(s)
			if diff := cmp.Diff(tc.want, summarize(Strategy{}.Validate(context.Background(), s))); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default", ResourceVersion: "1"}, Type: corev1.SecretTypeOpaque}
	tests := []struct {
		name     string
		mutate   func(s *corev1.Secret)
		wantType corev1.SecretType
		want     []fieldErr
	}{
		{name: "empty type keeps old", mutate: func(s *corev1.Secret) { s.Type = "" }, wantType: corev1.SecretTypeOpaque},
		{
			name:     "type immutable",
			mutate:   func(s *corev1.Secret) { s.Type = "example.com/custom" },
			wantType: "example.com/custom",
			want:     []fieldErr{{field.ErrorTypeInvalid, "type", "field is immutable"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := old.DeepCopy()
			tc.mutate(s)
			Strategy{}.PrepareForUpdate(context.Background(), s, old)
			if s.Type != tc.wantType {
				t.Errorf("type = %q, want %q", s.Type, tc.wantType)
			}
			if diff := cmp.Diff(tc.want, summarize(Strategy{}.ValidateUpdate(context.Background(), s, old))); diff != "" {
				t.Errorf("ValidateUpdate (-want +got):\n%s", diff)
			}
		})
	}
	if diff := cmp.Diff(fields.Set{"metadata.name": "s", "metadata.namespace": "default", "type": "Opaque"}, Fields(old)); diff != "" {
		t.Errorf("Fields (-want +got):\n%s", diff)
	}
}
