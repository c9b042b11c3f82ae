package openapi

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode"

	restful "github.com/emicklei/go-restful/v3"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"

	"kubesvc/internal/resource"
)

// Route metadata keys kube-apiserver attaches to every REST route; kube-openapi's builders copy
// them into the operation as extensions.
const (
	extensionGVK    = "x-kubernetes-group-version-kind"
	extensionAction = "x-kubernetes-action"
)

const prettyDoc = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."

// Media types of the serializers kube-apiserver registers (CBOR is behind a disabled gate).
var (
	mediaTypes       = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
	streamMediaTypes = []string{"application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch"}
	allMediaTypes    = append(append([]string{}, mediaTypes...), streamMediaTypes...)
	patchMediaTypes  = []string{
		string(types.JSONPatchType),
		string(types.MergePatchType),
		string(types.StrategicMergePatchType),
		string(types.ApplyYAMLPatchType),
	}
)

// Action verbs as the installer names them (k8s.io/apiserver/pkg/endpoints/request); their
// lower-case form is the x-kubernetes-action value.
const (
	actionGet              = "GET"
	actionList             = "LIST"
	actionPut              = "PUT"
	actionPatch            = "PATCH"
	actionPost             = "POST"
	actionDelete           = "DELETE"
	actionDeleteCollection = "DELETECOLLECTION"
	actionWatch            = "WATCH"
	actionWatchList        = "WATCHLIST"
	actionConnect          = "CONNECT"
)

// getterWithOptions describes a subresource whose GET takes an options object
// (rest.GetterWithOptions upstream) and produces something other than its kind.
type getterWithOptions struct {
	options   func() runtime.Object
	mimeTypes []string    // rest.StorageMetadata.ProducesMIMETypes
	produces  interface{} // rest.StorageMetadata.ProducesObject
}

// gettersWithOptions lists those subresources, keyed by group and "resource/subresource".
var gettersWithOptions = map[schema.GroupResource]getterWithOptions{
	{Resource: "pods/log"}: {
		options:   func() runtime.Object { return &corev1.PodLogOptions{} },
		mimeTypes: []string{"text/plain"},
		produces:  "",
	},
}

// deleteReturnsObject lists the resources whose DELETE returns the deleted object instead of a
// Status (genericregistry.Store.ReturnDeletedObject upstream).
var deleteReturnsObject = map[schema.GroupResource]bool{
	{Resource: "pods"}:     true,
	{Resource: "services"}: true,
}

// connectMethods maps discovery verbs of a connect subresource to the HTTP methods it accepts,
// in kube's order (rest.Connecter.ConnectMethods).
var connectMethods = []struct{ verb, method string }{
	{"get", "GET"}, {"create", "POST"}, {"update", "PUT"}, {"patch", "PATCH"}, {"delete", "DELETE"},
}

type action struct {
	verb          string
	path          string
	params        []*restful.Parameter
	allNamespaces bool
}

func noop(*restful.Request, *restful.Response) {}

// apiPrefix returns the URL prefix of gv: /api/v1 or /apis/<group>/<version>.
func apiPrefix(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "/api/" + gv.Version
	}
	return "/apis/" + gv.Group + "/" + gv.Version
}

// groupVersionService describes the REST routes of one group/version, including its
// APIResourceList discovery route, as kube-apiserver's APIInstaller registers them.
func groupVersionService(s *runtime.Scheme, gv schema.GroupVersion, infos []*resource.Info) (*restful.WebService, error) {
	prefix := apiPrefix(gv)
	ws := new(restful.WebService)
	ws.Path(prefix)
	ws.Doc("API at " + prefix)
	ws.Consumes("*/*")
	ws.Produces(allMediaTypes...)
	ws.ApiVersion(gv.String())

	// The installer registers storage paths in sorted order.
	type entry struct {
		info *resource.Info
		sub  *resource.Subresource
		path string
	}
	var entries []entry
	for _, info := range infos {
		entries = append(entries, entry{info: info, path: info.Resource})
		for i := range info.Subresources {
			sub := &info.Subresources[i]
			entries = append(entries, entry{info: info, sub: sub, path: info.Resource + "/" + sub.Name})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	for _, e := range entries {
		if err := registerResource(ws, s, e.info, e.sub); err != nil {
			return nil, fmt.Errorf("registering %s in %s: %w", e.path, gv, err)
		}
	}

	ws.Route(ws.GET("/").To(noop).
		Doc("get available resources").
		Operation("getAPIResources").
		Produces(mediaTypes...).
		Consumes(mediaTypes...).
		Writes(metav1.APIResourceList{}))
	return ws, nil
}

// discoveryService describes a discovery root: GET prefix/ returning sample.
func discoveryService(prefix, doc, operation string, sample interface{}) *restful.WebService {
	ws := new(restful.WebService)
	ws.Path(prefix)
	ws.Doc(doc)
	ws.Route(ws.GET("/").To(noop).
		Doc(doc).
		Operation(operation).
		Produces(mediaTypes...).
		Consumes(mediaTypes...).
		Writes(sample))
	return ws
}

// versionService describes GET /version/.
func versionService() *restful.WebService {
	ws := new(restful.WebService)
	ws.Path("/version")
	ws.Doc("git code version from which this is built")
	ws.Route(ws.GET("/").To(noop).
		Doc("get the version information for this server").
		Operation("getCode").
		Produces(restful.MIME_JSON).
		Consumes(restful.MIME_JSON).
		Writes(version.Info{}))
	return ws
}

// subresourceKind returns the fully qualified kind a subresource serves.
func subresourceKind(gv schema.GroupVersion, sub *resource.Subresource) schema.GroupVersionKind {
	if sub.Kind.Group == "" && sub.Kind.Version == "" {
		return gv.WithKind(sub.Kind.Kind)
	}
	return sub.Kind
}

// registerResource adds the routes of one resource or subresource to ws. It follows
// APIInstaller.registerResourceHandlers: same actions, paths, operation names, docs,
// parameters, request and response objects, and route metadata.
func registerResource(ws *restful.WebService, s *runtime.Scheme, info *resource.Info, sub *resource.Subresource) error {
	gv := info.GroupVersion()
	resourceName := info.Resource
	verbs := info.Verbs
	fqKind := info.GroupVersionKind()
	subresource := ""
	if sub != nil {
		subresource = sub.Name
		verbs = sub.Verbs
		fqKind = subresourceKind(gv, sub)
	}
	isSubresource := sub != nil
	storagePath := resourceName
	if isSubresource {
		storagePath += "/" + subresource
	}

	versionedPtr, err := s.New(fqKind)
	if err != nil {
		return fmt.Errorf("kind %s: %w", fqKind, err)
	}
	defaultVersionedObject := indirect(versionedPtr)
	kind := fqKind.Kind

	has := map[string]bool{}
	for _, v := range verbs {
		has[v] = true
	}
	getOpts, isGetterWithOptions := gettersWithOptions[schema.GroupResource{Group: gv.Group, Resource: storagePath}]
	isConnecter := isSubresource && !isGetterWithOptions && strings.HasSuffix(kind, "Options")
	connectSubpath := isConnecter && strings.HasSuffix(kind, "ProxyOptions")
	var (
		isLister, isCreater, isCollectionDeleter, isGetter bool
		isUpdater, isPatcher, isGracefulDeleter, isWatcher bool
	)
	if !isConnecter {
		isLister, isCreater, isCollectionDeleter = has["list"], has["create"], has["deletecollection"]
		isGetter, isUpdater, isPatcher = has["get"], has["update"], has["patch"]
		isGracefulDeleter, isWatcher = has["delete"], has["watch"]
	}

	var versionedList interface{}
	if isLister {
		if isSubresource || info.NewList == nil {
			return fmt.Errorf("%s: list is only supported on resources with a list kind", storagePath)
		}
		versionedList = indirect(info.NewList())
	}
	versionedStatus := metav1.Status{}
	versionedWatchEvent := metav1.WatchEvent{}
	var versionedConnectOptions runtime.Object
	if isConnecter {
		versionedConnectOptions = versionedPtr
	}

	allowWatchList := isWatcher && isLister
	nameParam := ws.PathParameter("name", "name of the "+kind).DataType("string")
	pathParam := ws.PathParameter("path", "path to the resource").DataType("string")

	var actions []action
	var namespaced string
	if !info.Namespaced {
		resourcePath := resourceName
		var resourceParams []*restful.Parameter
		itemPath := resourcePath + "/{name}"
		nameParams := []*restful.Parameter{nameParam}
		proxyParams := []*restful.Parameter{nameParam, pathParam}
		if isSubresource {
			itemPath += "/" + subresource
			resourcePath = itemPath
			resourceParams = nameParams
		}
		actions = appendIf(actions, action{actionList, resourcePath, resourceParams, false}, isLister)
		actions = appendIf(actions, action{actionPost, resourcePath, resourceParams, false}, isCreater)
		actions = appendIf(actions, action{actionDeleteCollection, resourcePath, resourceParams, false}, isCollectionDeleter)
		actions = appendIf(actions, action{actionWatchList, "watch/" + resourcePath, resourceParams, false}, allowWatchList)
		actions = appendIf(actions, action{actionGet, itemPath, nameParams, false}, isGetter)
		actions = appendIf(actions, action{actionPut, itemPath, nameParams, false}, isUpdater)
		actions = appendIf(actions, action{actionPatch, itemPath, nameParams, false}, isPatcher)
		actions = appendIf(actions, action{actionDelete, itemPath, nameParams, false}, isGracefulDeleter)
		actions = appendIf(actions, action{actionWatch, "watch/" + itemPath, nameParams, false}, isWatcher)
		actions = appendIf(actions, action{actionConnect, itemPath, nameParams, false}, isConnecter)
		actions = appendIf(actions, action{actionConnect, itemPath + "/{path:*}", proxyParams, false}, connectSubpath)
	} else {
		namespaced = "Namespaced"
		namespaceParam := ws.PathParameter("namespace", "object name and auth scope, such as for teams and projects").DataType("string")
		namespacedPath := "namespaces/{namespace}/" + resourceName
		namespaceParams := []*restful.Parameter{namespaceParam}
		resourcePath := namespacedPath
		resourceParams := namespaceParams
		itemPath := namespacedPath + "/{name}"
		nameParams := []*restful.Parameter{namespaceParam, nameParam}
		proxyParams := []*restful.Parameter{namespaceParam, nameParam, pathParam}
		if isSubresource {
			itemPath += "/" + subresource
			resourcePath = itemPath
			resourceParams = nameParams
		}
		actions = appendIf(actions, action{actionList, resourcePath, resourceParams, false}, isLister)
		actions = appendIf(actions, action{actionPost, resourcePath, resourceParams, false}, isCreater)
		actions = appendIf(actions, action{actionDeleteCollection, resourcePath, resourceParams, false}, isCollectionDeleter)
		actions = appendIf(actions, action{actionWatchList, "watch/" + resourcePath, resourceParams, false}, allowWatchList)
		actions = appendIf(actions, action{actionGet, itemPath, nameParams, false}, isGetter)
		actions = appendIf(actions, action{actionPut, itemPath, nameParams, false}, isUpdater)
		actions = appendIf(actions, action{actionPatch, itemPath, nameParams, false}, isPatcher)
		actions = appendIf(actions, action{actionDelete, itemPath, nameParams, false}, isGracefulDeleter)
		actions = appendIf(actions, action{actionWatch, "watch/" + itemPath, nameParams, false}, isWatcher)
		actions = appendIf(actions, action{actionConnect, itemPath, nameParams, false}, isConnecter)
		actions = appendIf(actions, action{actionConnect, itemPath + "/{path:*}", proxyParams, false}, connectSubpath)
		if !isSubresource {
			actions = appendIf(actions, action{actionList, resourceName, nil, true}, isLister)
			actions = appendIf(actions, action{actionWatchList, "watch/" + resourceName, nil, true}, allowWatchList)
		}
	}

	// Operation names and docs use the parent's kind; the metadata GVK is the served kind.
	if isSubresource {
		kind = info.Kind
	}
	title := titleCase(subresource)
	gvkMeta := metav1.GroupVersionKind{Group: fqKind.Group, Version: fqKind.Version, Kind: fqKind.Kind}

	var producedMIMETypes []string
	var producedObject interface{} = defaultVersionedObject
	if isGetterWithOptions {
		producedMIMETypes = getOpts.mimeTypes
		producedObject = getOpts.produces
	}
	deleteReturnType := interface{}(versionedStatus)
	if deleteReturnsObject[schema.GroupResource{Group: gv.Group, Resource: storagePath}] {
		deleteReturnType = producedObject
	}

	for _, a := range actions {
		suffix := ""
		ns := namespaced
		if strings.HasSuffix(a.path, "/{path:*}") {
			suffix += "WithPath"
		}
		if a.allNamespaces {
			suffix += "ForAllNamespaces"
			ns = ""
		}
		opName := func(verb string) string { return verb + ns + kind + title + suffix }

		var routes []*restful.RouteBuilder
		switch a.verb {
		case actionGet:
			doc := "read the specified " + kind
			if isSubresource {
				doc = "read " + subresource + " of the specified " + kind
			}
			route := ws.GET(a.path).To(noop).
				Doc(doc).
				Param(ws.QueryParameter("pretty", prettyDoc)).
				Operation(opName("read")).
				Produces(append(append([]string{}, producedMIMETypes...), mediaTypes...)...).
				Returns(200, "OK", producedObject).
				Writes(producedObject)
			if isGetterWithOptions {
				if err := addObjectParams(ws, route, getOpts.options()); err != nil {
					return err
				}
			}
			addParams(route, a.params)
			routes = append(routes, route)
		case actionList:
			doc := "list objects of kind " + kind
			if isSubresource {
				doc = "list " + subresource + " of objects of kind " + kind
			}
			if isWatcher {
				doc = "list or watch objects of kind " + kind
				if isSubresource {
					doc = "list or watch " + subresource + " of objects of kind " + kind
				}
			}
			route := ws.GET(a.path).To(noop).
				Doc(doc).
				Param(ws.QueryParameter("pretty", prettyDoc)).
				Operation(opName("list")).
				Produces(allMediaTypes...).
				Returns(200, "OK", versionedList).
				Writes(versionedList)
			if err := addObjectParams(ws, route, &metav1.ListOptions{}); err != nil {
				return err
			}
			addParams(route, a.params)
			routes = append(routes, route)
		case actionPut:
			doc := "replace the specified " + kind
			if isSubresource {
				doc = "replace " + subresource + " of the specified " + kind
			}
			route := ws.PUT(a.path).To(noop).
				Doc(doc).
				Param(ws.QueryParameter("pretty", prettyDoc)).
				Operation(opName("replace")).
				Produces(mediaTypes...).
				Returns(200, "OK", producedObject).
				Returns(201, "Created", producedObject).
				Reads(defaultVersionedObject).
				Writes(producedObject)
			if err := addObjectParams(ws, route, &metav1.UpdateOptions{}); err != nil {
				return err
			}
			addParams(route, a.params)
			routes = append(routes, route)
		case actionPatch:
			doc := "partially update the specified " + kind
			if isSubresource {
				doc = "partially update " + subresource + " of the specified " + kind
			}
			route := ws.PATCH(a.path).To(noop).
				Doc(doc).
				Param(ws.QueryParameter("pretty", prettyDoc)).
				Consumes(patchMediaTypes...).
				Operation(opName("patch")).
				Produces(mediaTypes...).
				Returns(200, "OK", producedObject).
				Returns(201, "Created", producedObject).
				Reads(metav1.Patch{}).
				Writes(producedObject)
			if err := addObjectParams(ws, route, &metav1.PatchOptions{}); err != nil {
				return err
			}
			addParams(route, a.params)
			routes = append(routes, route)
		case actionPost:
			article := articleForNoun(kind, " ")
			doc := "create" + article + kind
			if isSubresource {
				doc = "create " + subresource + " of" + article + kind
			}
			route := ws.POST(a.path).To(noop).
				Doc(doc).
				Param(ws.QueryParameter("pretty", prettyDoc)).
				Operation(opName("create")).
				Produces(mediaTypes...).
				Returns(200, "OK", producedObject).
				Returns(201, "Created", producedObject).
				Returns(202, "Accepted", producedObject).
				Reads(defaultVersionedObject).
				Writes(producedObject)
			if err := addObjectParams(ws, route, &metav1.CreateOptions{}); err != nil {
				return err
			}
			addParams(route, a.params)
			routes = append(routes, route)
		case actionDelete:
			article := articleForNoun(kind, " ")
			doc := "delete" + article + kind
			if isSubresource {
				doc = "delete " + subresource + " of" + article + kind
			}
			route := ws.DELETE(a.path).To(noop).
				Doc(doc).
				Param(ws.QueryParameter("pretty", prettyDoc)).
				Operation(opName("delete")).
				Produces(mediaTypes...).
				Writes(deleteReturnType).
				Returns(200, "OK", deleteReturnType).
				Returns(202, "Accepted", deleteReturnType)
			route.Reads(metav1.DeleteOptions{})
			route.ParameterNamed("body").Required(false)
			if err := addObjectParams(ws, route, &metav1.DeleteOptions{}); err != nil {
				return err
			}
			addParams(route, a.params)
			routes = append(routes, route)
		case actionDeleteCollection:
			doc := "delete collection of " + kind
			if isSubresource {
				doc = "delete collection of " + subresource + " of a " + kind
			}
			route := ws.DELETE(a.path).To(noop).
				Doc(doc).
				Param(ws.QueryParameter("pretty", prettyDoc)).
				Operation(opName("deletecollection")).
				Produces(mediaTypes...).
				Writes(versionedStatus).
				Returns(200, "OK", versionedStatus)
			route.Reads(metav1.DeleteOptions{})
			route.ParameterNamed("body").Required(false)
			if err := addObjectParams(ws, route, &metav1.DeleteOptions{}); err != nil {
				return err
			}
			if err := addObjectParams(ws, route, &metav1.ListOptions{}, "watch", "allowWatchBookmarks"); err != nil {
				return err
			}
			addParams(route, a.params)
			routes = append(routes, route)
		case actionWatch:
			doc := "watch changes to an object of kind " + kind
			if isSubresource {
				doc = "watch changes to " + subresource + " of an object of kind " + kind
			}
			doc += ". deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
			route := ws.GET(a.path).To(noop).
				Doc(doc).
				Param(ws.QueryParameter("pretty", prettyDoc)).
				Operation(opName("watch")).
				Produces(allMediaTypes...).
				Returns(200, "OK", versionedWatchEvent).
				Writes(versionedWatchEvent)
			if err := addObjectParams(ws, route, &metav1.ListOptions{}); err != nil {
				return err
			}
			addParams(route, a.params)
			routes = append(routes, route)
		case actionWatchList:
			doc := "watch individual changes to a list of " + kind
			if isSubresource {
				doc = "watch individual changes to a list of " + subresource + " of " + kind
			}
			doc += ". deprecated: use the 'watch' parameter with a list operation instead."
			route := ws.GET(a.path).To(noop).
				Doc(doc).
				Param(ws.QueryParameter("pretty", prettyDoc)).
				Operation("watch"+ns+kind+title+"List"+suffix).
				Produces(allMediaTypes...).
				Returns(200, "OK", versionedWatchEvent).
				Writes(versionedWatchEvent)
			if err := addObjectParams(ws, route, &metav1.ListOptions{}); err != nil {
				return err
			}
			addParams(route, a.params)
			routes = append(routes, route)
		case actionConnect:
			methods := connectMethodsFor(has, connectSubpath)
			for _, method := range methods {
				doc := "connect " + method + " requests to " + kind
				if isSubresource {
					doc = "connect " + method + " requests to " + subresource + " of " + kind
				}
				route := ws.Method(method).Path(a.path).To(noop).
					Doc(doc).
					Operation("connect" + titleCase(strings.ToLower(method)) + ns + kind + title + suffix).
					Produces("*/*").
					Consumes("*/*").
					Writes("string")
				if versionedConnectOptions != nil {
					if err := addObjectParams(ws, route, versionedConnectOptions); err != nil {
						return err
					}
				}
				addParams(route, a.params)
				routes = append(routes, route)
			}
		default:
			return fmt.Errorf("unrecognized action verb %q", a.verb)
		}
		for _, route := range routes {
			route.Metadata(extensionGVK, gvkMeta)
			route.Metadata(extensionAction, strings.ToLower(a.verb))
			ws.Route(route)
		}
	}
	return nil
}

// connectMethodsFor returns the HTTP methods of a connect subresource with the given verbs.
func connectMethodsFor(has map[string]bool, proxy bool) []string {
	var out []string
	for _, m := range connectMethods {
		if has[m.verb] {
			out = append(out, m.method)
		}
	}
	if proxy {
		out = append(out, "HEAD", "OPTIONS")
	}
	return out
}

func appendIf(actions []action, a action, ok bool) []action {
	if ok {
		actions = append(actions, a)
	}
	return actions
}

func addParams(route *restful.RouteBuilder, params []*restful.Parameter) {
	for _, p := range params {
		route.Param(p)
	}
}

func indirect(ptr interface{}) interface{} { return reflect.Indirect(reflect.ValueOf(ptr)).Interface() }

// documentable is implemented by the k8s.io/api types (types_swagger_doc_generated.go).
type documentable interface {
	SwaggerDoc() map[string]string
}

// addObjectParams turns the top-level scalar fields of an options struct into query parameters,
// named after their JSON names and documented from SwaggerDoc(), like the installer's
// AddObjectParams (including its quirks: struct and interface fields, and pointers to them, are
// skipped, which drops PodLogOptions.sinceTime).
func addObjectParams(ws *restful.WebService, route *restful.RouteBuilder, obj interface{}, excluded ...string) error {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("options object %T is not a pointer to a struct", obj)
	}
	st := v.Elem().Type()
	skip := map[string]bool{}
	for _, e := range excluded {
		skip[e] = true
	}
	for i := 0; i < st.NumField(); i++ {
		sf := st.Field(i)
		switch sf.Type.Kind() {
		case reflect.Interface, reflect.Struct:
			continue
		case reflect.Pointer:
			if (sf.Type.Elem().Kind() == reflect.Interface || sf.Type.Elem().Kind() == reflect.Struct) &&
				strings.TrimPrefix(sf.Type.String(), "*") != "metav1.Time" {
				continue
			}
		}
		jsonName, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if jsonName == "" || skip[jsonName] {
			continue
		}
		var desc string
		if d, ok := obj.(documentable); ok {
			desc = d.SwaggerDoc()[jsonName]
		}
		route.Param(ws.QueryParameter(jsonName, desc).DataType(typeToJSON(sf.Type.String())))
	}
	return nil
}

// typeToJSON converts a Go type name to the JSON type of a query parameter.
func typeToJSON(typeName string) string {
	switch typeName {
	case "bool", "*bool":
		return "boolean"
	case "uint8", "*uint8", "int", "*int", "int32", "*int32", "int64", "*int64", "uint32", "*uint32", "uint64", "*uint64":
		return "integer"
	case "float64", "*float64", "float32", "*float32":
		return "number"
	case "metav1.Time", "*metav1.Time":
		return "string"
	case "byte", "*byte":
		return "string"
	case "v1.DeletionPropagation", "*v1.DeletionPropagation":
		return "string"
	case "v1.ResourceVersionMatch", "*v1.ResourceVersionMatch":
		return "string"
	case "v1.IncludeObjectPolicy", "*v1.IncludeObjectPolicy":
		return "string"
	case "*string":
		return "string"
	case "[]string", "[]*string":
		return "string"
	case "[]int32", "[]*int32":
		return "integer"
	default:
		return typeName
	}
}

// articleForNoun returns " a ", " an " or, for plurals, " ".
func articleForNoun(noun, padding string) string {
	if !strings.HasSuffix(noun, "ss") && strings.HasSuffix(noun, "s") {
		return padding
	}
	article := "a"
	if strings.ContainsRune("aeiouAEIOU", rune(noun[0])) {
		article = "an"
	}
	return padding + article + padding
}

// titleCase upper-cases the first letter, as the deprecated strings.Title does for one word.
func titleCase(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}
