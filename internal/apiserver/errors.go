package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"

	"kubesvc/internal/storage"
)

// toAPIError turns any error into an APIStatus error. This is the one place storage errors
// become Kubernetes Status responses.
func toAPIError(err error, gr schema.GroupResource, name string) error {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return err
	}
	var se *storage.Error
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return apierrors.NewNotFound(gr, name)
	case errors.Is(err, storage.ErrExists):
		return apierrors.NewAlreadyExists(gr, name)
	case errors.Is(err, storage.ErrConflict):
		msg := "the object has been modified; please apply your changes to the latest version and try again"
		if errors.As(err, &se) && se.Message != "" {
			msg = se.Message
		}
		return apierrors.NewConflict(gr, name, errors.New(msg))
	case errors.Is(err, storage.ErrExpired):
		errors.As(err, &se)
		return apierrors.NewResourceExpired(se.Message)
	case errors.Is(err, storage.ErrInvalidContinue):
		errors.As(err, &se)
		return apierrors.NewBadRequest(se.Message)
	case errors.Is(err, storage.ErrTooLarge):
		errors.As(err, &se)
		e := apierrors.NewTimeoutError(se.Message, 1)
		e.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: se.Message}}
		return e
	case errors.Is(err, context.DeadlineExceeded):
		return apierrors.NewTimeoutError("request did not complete within requested timeout", 0)
	}
	klog.ErrorS(err, "internal error", "resource", gr.String(), "name", name)
	return apierrors.NewInternalError(err)
}

// writeError writes err as a Status with its HTTP code.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error, gr schema.GroupResource, name string) {
	st := toAPIError(err, gr, name).(apierrors.APIStatus).Status()
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	s.writeObject(w, r, int(st.Code), &st)
}

func notFoundPath(w http.ResponseWriter, r *http.Request, s *Server) {
	st := apierrors.NewNotFound(schema.GroupResource{}, "").Status()
	st.Message = "the server could not find the requested resource"
	st.Details = nil
	st.Kind, st.APIVersion = "Status", "v1"
	s.writeObject(w, r, http.StatusNotFound, &st)
}

func methodNotSupported(gr schema.GroupResource, verb string) error {
	return apierrors.NewMethodNotSupported(gr, verb)
}

func badRequest(format string, args ...any) error {
	return apierrors.NewBadRequest(fmt.Sprintf(format, args...))
}

func errNotAcceptable() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotAcceptable, Reason: metav1.StatusReasonNotAcceptable,
		Message: "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
	}}
}

var errConflictModified = errors.New("the object has been modified; please apply your changes to the latest version and try again")

func errUnsupportedMediaType(ct string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got %s)", ct),
	}}
}
