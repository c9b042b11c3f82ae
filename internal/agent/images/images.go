// Package images is a node's image catalog (DESIGN §5.2): container images are names for
// commands on the host. Built-in entries run `kubesvc toolbox APP` (luksa/kubia and its tags,
// agnhost, pause); the agent's config file adds entries mapping other images to host
// commands. A container with a command runs it from the host whatever its image; a container
// without one needs a catalog entry, else it waits with ErrImagePull.
//
// Imported by internal/agent.
package images

import (
	"fmt"
	"slices"
	"strings"
)

// Image is what a catalog entry runs: Docker's ENTRYPOINT and CMD, plus environment.
type Image struct {
	// Entrypoint is prepended to the container's args (or Cmd).
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Cmd is used when the container has no args.
	Cmd []string `json:"cmd,omitempty"`
	// Env is the image's environment (NAME=value), before the container's.
	Env []string `json:"env,omitempty"`
	// Paths maps a path inside the image to a host command line, for containers whose
	// command names the image's binary (agnhost's "/agnhost").
	Paths map[string][]string `json:"paths,omitempty"`
	// WorkingDir is the default working directory.
	WorkingDir string `json:"workingDir,omitempty"`
}

// Entry is a catalog entry of the agent's config file.
type Entry struct {
	// Name is an image reference; without a tag it matches every tag.
	Name string `json:"name"`
	Image
}

// Catalog resolves image references. It is immutable and safe for concurrent use.
type Catalog struct {
	exact map[string]Image // "repo:tag"
	repos map[string]Image // "repo", any tag
}

// New returns the built-in catalog for the kubesvc binary exe, plus extra entries (which win).
func New(exe string, extra []Entry) (*Catalog, error) {
	c := &Catalog{exact: map[string]Image{}, repos: map[string]Image{}}
	tb := func(args ...string) []string { return append([]string{exe, "toolbox"}, args...) }
	kubia := func(variant string) Image { return Image{Entrypoint: tb("kubia", "--variant", variant)} }
	c.repos["docker.io/luksa/kubia"] = kubia("v1")
	c.exact["docker.io/luksa/kubia:v2"] = kubia("v2")
	c.exact["docker.io/luksa/kubia:v3"] = kubia("v3")
	c.repos["docker.io/luksa/kubia-unhealthy"] = kubia("unhealthy")
	agnhost := Image{Entrypoint: tb("agnhost"), Paths: map[string][]string{"/agnhost": tb("agnhost")}}
	for _, r := range []string{"registry.k8s.io/e2e-test-images/agnhost", "k8s.gcr.io/e2e-test-images/agnhost", "gcr.io/kubernetes-e2e-test-images/agnhost"} {
		c.repos[r] = agnhost
	}
	pause := Image{Entrypoint: tb("pause"), Paths: map[string][]string{"/pause": tb("pause")}}
	for _, r := range []string{"registry.k8s.io/pause", "k8s.gcr.io/pause", "docker.io/rancher/mirrored-pause"} {
		c.repos[r] = pause
	}
	for _, e := range extra {
		repo, tag, err := Normalize(e.Name)
		if err != nil {
			return nil, fmt.Errorf("image catalog entry %q: %w", e.Name, err)
		}
		if len(e.Entrypoint) == 0 && len(e.Cmd) == 0 {
			return nil, fmt.Errorf("image catalog entry %q: needs entrypoint or cmd", e.Name)
		}
		if hasTag(e.Name) {
			c.exact[repo+":"+tag] = e.Image
		} else {
			c.repos[repo] = e.Image
		}
	}
	return c, nil
}

// hasTag reports whether ref names a tag or digest explicitly.
func hasTag(ref string) bool {
	last := ref[strings.LastIndex(ref, "/")+1:]
	return strings.ContainsAny(last, ":@")
}

// Normalize returns the canonical repository (docker.io/library/... for official images) and
// the tag ("latest" when none, or the digest) of a Docker image reference.
func Normalize(ref string) (repo, tag string, err error) {
	if ref == "" || strings.ContainsAny(ref, " \t\n") {
		return "", "", fmt.Errorf("invalid image reference %q", ref)
	}
	name, digest, hasDigest := strings.Cut(ref, "@")
	tag = "latest"
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	if hasDigest {
		tag = digest
	}
	parts := strings.Split(name, "/")
	if len(parts) == 1 || !(strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		if len(parts) == 1 {
			name = "library/" + name
		}
		name = "docker.io/" + name
	}
	if strings.HasPrefix(name, "index.docker.io/") {
		name = "docker.io/" + strings.TrimPrefix(name, "index.docker.io/")
	}
	return strings.ToLower(name), tag, nil
}

// Resolve returns the catalog entry of ref: an exact repo:tag entry, else a repository entry.
func (c *Catalog) Resolve(ref string) (Image, bool) {
	repo, tag, err := Normalize(ref)
	if err != nil {
		return Image{}, false
	}
	if img, ok := c.exact[repo+":"+tag]; ok {
		return img, true
	}
	img, ok := c.repos[repo]
	return img, ok
}

// Canonical is the full reference the status reports (docker.io/luksa/kubia:latest).
func Canonical(ref string) string {
	repo, tag, err := Normalize(ref)
	if err != nil {
		return ref
	}
	if strings.Contains(tag, ":") {
		return repo + "@" + tag
	}
	return repo + ":" + tag
}

// ErrNotInCatalog is the message of a container without command whose image is unknown.
func ErrNotInCatalog(ref string) string {
	return fmt.Sprintf("image %q is not in this node's image catalog (kubesvc runs host commands, not images): give the container a command, or map the image to a host command in the agent's config file", ref)
}

// Command returns the command line of a container (Docker semantics: command replaces the
// entrypoint, args replace the cmd), with an image path in command[0] mapped to its host
// command. ok=false means the image is needed but unknown.
func (c *Catalog) Command(image string, command, args []string) (argv []string, img Image, ok bool) {
	img, known := c.Resolve(image)
	if len(command) > 0 {
		argv = slices.Clone(command)
		if known {
			if host, mapped := img.Paths[command[0]]; mapped {
				argv = append(slices.Clone(host), command[1:]...)
			}
		}
		return append(argv, args...), img, true
	}
	if !known {
		return nil, Image{}, false
	}
	argv = slices.Clone(img.Entrypoint)
	if len(args) > 0 {
		argv = append(argv, args...)
	} else {
		argv = append(argv, img.Cmd...)
	}
	return argv, img, len(argv) > 0
}
