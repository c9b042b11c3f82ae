package pod

// Volume and volume-mount validation ported from k8s.io/kubernetes
// pkg/apis/core/validation/validation.go (ValidateVolumes, validateVolumeSource and the
// validators of the common sources, ValidateVolumeMounts, validateLocalDescendingPath). The
// legacy in-tree plugins (rbd, iscsi, cinder, ...) are counted but not inspected.

import (
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	fileModeErrorMsg     = "must be a number between 0 and 0777 (octal), both inclusive"
	emptyDirModeErrorMsg = "must be a number between 0 and 01777 (octal), both inclusive"
)

var supportedHostPathTypes = sets.New(corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
	corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev)

// volumeSources lists the volume types in the order kube checks them, with the path used in
// the "may not specify more than 1 volume type" error (including kube's "downwarAPI").
func volumeSources(s *corev1.VolumeSource) []struct {
	name  string
	isSet bool
} {
	return []struct {
		name  string
		isSet bool
	}{
		{"emptyDir", s.EmptyDir != nil}, {"hostPath", s.HostPath != nil}, {"gitRepo", s.GitRepo != nil}, //nolint:staticcheck // deprecated source still counted
		{"gcePersistentDisk", s.GCEPersistentDisk != nil}, {"awsElasticBlockStore", s.AWSElasticBlockStore != nil},
		{"secret", s.Secret != nil}, {"nfs", s.NFS != nil}, {"iscsi", s.ISCSI != nil}, {"glusterfs", s.Glusterfs != nil},
		{"flocker", s.Flocker != nil}, {"persistentVolumeClaim", s.PersistentVolumeClaim != nil}, {"rbd", s.RBD != nil},
		{"cinder", s.Cinder != nil}, {"cephFS", s.CephFS != nil}, {"quobyte", s.Quobyte != nil},
		{"downwarAPI", s.DownwardAPI != nil}, {"fc", s.FC != nil}, {"flexVolume", s.FlexVolume != nil},
		{"configMap", s.ConfigMap != nil}, {"azureFile", s.AzureFile != nil}, {"vsphereVolume", s.VsphereVolume != nil},
		{"photonPersistentDisk", s.PhotonPersistentDisk != nil}, {"portworxVolume", s.PortworxVolume != nil},
		{"azureDisk", s.AzureDisk != nil}, {"storageos", s.StorageOS != nil}, {"projected", s.Projected != nil},
		{"scaleIO", s.ScaleIO != nil}, {"csi", s.CSI != nil}, {"ephemeral", s.Ephemeral != nil}, {"image", s.Image != nil},
	}
}

func volumeSourceCount(s *corev1.VolumeSource) int {
	n := 0
	for _, v := range volumeSources(s) {
		if v.isSet {
			n++
		}
	}
	return n
}

func validateVolumes(volumes []corev1.Volume, fldPath *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var allErrs field.ErrorList
	names := sets.New[string]()
	vols := make(map[string]corev1.VolumeSource, len(volumes))
	for i := range volumes {
		vol := &volumes[i]
		idxPath := fldPath.Index(i)
		namePath := idxPath.Child("name")
		el := validateVolumeSource(&vol.VolumeSource, idxPath)
		if vol.Name == "" {
			el = append(el, field.Required(namePath, ""))
		} else {
			el = append(el, validateDNS1123Label(vol.Name, namePath)...)
		}
		if names.Has(vol.Name) {
			el = append(el, field.Duplicate(namePath, vol.Name))
		}
		if len(el) == 0 {
			names.Insert(vol.Name)
			vols[vol.Name] = vol.VolumeSource
		} else {
			allErrs = append(allErrs, el...)
		}
	}
	return vols, allErrs
}

func validateVolumeSource(s *corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	n := 0
	for _, v := range volumeSources(s) {
		if !v.isSet {
			continue
		}
		if n > 0 {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child(v.name), "may not specify more than 1 volume type"))
			continue
		}
		n++
		allErrs = append(allErrs, validateOneVolumeSource(s, v.name, fldPath)...)
	}
	if n == 0 {
		allErrs = append(allErrs, field.Required(fldPath, "must specify a volume type"))
	}
	return allErrs
}

func validateOneVolumeSource(s *corev1.VolumeSource, name string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch name {
	case "emptyDir":
		if s.EmptyDir.SizeLimit != nil && s.EmptyDir.SizeLimit.Cmp(resource.Quantity{}) < 0 {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("emptyDir").Child("sizeLimit"), "SizeLimit field must be a valid resource quantity"))
		}
	case "hostPath":
		p := fldPath.Child("hostPath")
		if s.HostPath.Path == "" {
			return field.ErrorList{field.Required(p.Child("path"), "")}
		}
		allErrs = append(allErrs, validatePathNoBacksteps(s.HostPath.Path, p.Child("path"))...)
		if t := s.HostPath.Type; t != nil && !supportedHostPathTypes.Has(*t) {
			allErrs = append(allErrs, field.NotSupported(p.Child("type"), t, sets.List(supportedHostPathTypes)))
		}
	case "secret":
		p := fldPath.Child("secret")
		if s.Secret.SecretName == "" {
			allErrs = append(allErrs, field.Required(p.Child("secretName"), ""))
		}
		allErrs = append(allErrs, validateMode(s.Secret.DefaultMode, p.Child("defaultMode"))...)
		allErrs = append(allErrs, validateKeyToPaths(s.Secret.Items, p.Child("items"))...)
	case "configMap":
		p := fldPath.Child("configMap")
		if s.ConfigMap.Name == "" {
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		}
		allErrs = append(allErrs, validateMode(s.ConfigMap.DefaultMode, p.Child("defaultMode"))...)
		allErrs = append(allErrs, validateKeyToPaths(s.ConfigMap.Items, p.Child("items"))...)
	case "persistentVolumeClaim":
		if s.PersistentVolumeClaim.ClaimName == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("persistentVolumeClaim").Child("claimName"), ""))
		}
	case "nfs":
		p := fldPath.Child("nfs")
		if s.NFS.Server == "" {
			allErrs = append(allErrs, field.Required(p.Child("server"), ""))
		}
		if s.NFS.Path == "" {
			allErrs = append(allErrs, field.Required(p.Child("path"), ""))
		}
		if !path.IsAbs(s.NFS.Path) {
			allErrs = append(allErrs, field.Invalid(p.Child("path"), s.NFS.Path, "must be an absolute path"))
		}
	case "downwarAPI":
		p := fldPath.Child("downwardAPI")
		allErrs = append(allErrs, validateMode(s.DownwardAPI.DefaultMode, p.Child("defaultMode"))...)
		for _, f := range s.DownwardAPI.Items {
			if f.Path == "" {
				allErrs = append(allErrs, field.Required(p.Child("path"), ""))
			}
			allErrs = append(allErrs, validateLocalNonReservedPath(f.Path, p.Child("path"))...)
			if f.FieldRef == nil && f.ResourceFieldRef == nil {
				allErrs = append(allErrs, field.Required(p, "one of fieldRef and resourceFieldRef is required"))
			}
			allErrs = append(allErrs, validateMode(f.Mode, p.Child("mode"))...)
		}
	case "projected":
		allErrs = append(allErrs, validateMode(s.Projected.DefaultMode, fldPath.Child("projected").Child("defaultMode"))...)
	case "csi":
		if s.CSI.Driver == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("csi").Child("driver"), ""))
		}
	case "ephemeral":
		if s.Ephemeral.VolumeClaimTemplate == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("ephemeral").Child("volumeClaimTemplate"), ""))
		}
	case "image":
		if s.Image.Reference == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("image").Child("reference"), ""))
		}
		if pp := s.Image.PullPolicy; pp != "" {
			allErrs = append(allErrs, validatePullPolicy(pp, fldPath.Child("image").Child("pullPolicy"))...)
		}
	}
	return allErrs
}

func validateMode(mode *int32, fldPath *field.Path) field.ErrorList {
	if mode != nil && (*mode > 0777 || *mode < 0) {
		return field.ErrorList{field.Invalid(fldPath, *mode, fileModeErrorMsg)}
	}
	return nil
}

func validateKeyToPaths(items []corev1.KeyToPath, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, kp := range items {
		p := fldPath.Index(i)
		if kp.Key == "" {
			allErrs = append(allErrs, field.Required(p.Child("key"), ""))
		}
		if kp.Path == "" {
			allErrs = append(allErrs, field.Required(p.Child("path"), ""))
		}
		allErrs = append(allErrs, validateLocalNonReservedPath(kp.Path, p.Child("path"))...)
		allErrs = append(allErrs, validateMode(kp.Mode, p.Child("mode"))...)
	}
	return allErrs
}

func validateLocalDescendingPath(targetPath string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if path.IsAbs(targetPath) {
		allErrs = append(allErrs, field.Invalid(fldPath, targetPath, "must be a relative path"))
	}
	return append(allErrs, validatePathNoBacksteps(targetPath, fldPath)...)
}

func validatePathNoBacksteps(targetPath string, fldPath *field.Path) field.ErrorList {
	for _, item := range strings.Split(filepath.ToSlash(targetPath), "/") {
		if item == ".." {
			return field.ErrorList{field.Invalid(fldPath, targetPath, "must not contain '..'")}
		}
	}
	return nil
}

func validateLocalNonReservedPath(targetPath string, fldPath *field.Path) field.ErrorList {
	allErrs := validateLocalDescendingPath(targetPath, fldPath)
	if strings.HasPrefix(targetPath, "..") && !strings.HasPrefix(targetPath, "../") {
		allErrs = append(allErrs, field.Invalid(fldPath, targetPath, "must not start with '..'"))
	}
	return allErrs
}

func validateVolumeMounts(mounts []corev1.VolumeMount, vols map[string]corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	mountpoints := sets.New[string]()
	for i, m := range mounts {
		idxPath := fldPath.Index(i)
		if m.Name == "" {
			allErrs = append(allErrs, field.Required(idxPath.Child("name"), ""))
		}
		if _, ok := vols[m.Name]; !ok {
			allErrs = append(allErrs, field.NotFound(idxPath.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			allErrs = append(allErrs, field.Required(idxPath.Child("mountPath"), ""))
		}
		if mountpoints.Has(m.MountPath) {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("mountPath"), m.MountPath, "must be unique"))
		}
		mountpoints.Insert(m.MountPath)
		if m.SubPath != "" {
			allErrs = append(allErrs, validateLocalDescendingPath(m.SubPath, fldPath.Child("subPath"))...)
		}
		if m.SubPathExpr != "" {
			if m.SubPath != "" {
				allErrs = append(allErrs, field.Invalid(idxPath.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			allErrs = append(allErrs, validateLocalDescendingPath(m.SubPathExpr, fldPath.Child("subPathExpr"))...)
		}
	}
	return allErrs
}
