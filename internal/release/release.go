// Package release writes the release copy of a bundle: the committed bundle/ names the
// operator image by tag, so that regenerating it is stable; a release names it by
// digest, and lists every image the operator may run in the CSV's relatedImages, so
// that a mirror for a disconnected cluster knows what to copy and OLM what to pin.
package release

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// RelatedImagePrefix marks the operator's environment variables that name images it
// deploys, the convention OLM and operator-sdk follow.
const RelatedImagePrefix = "RELATED_IMAGE_"

// Image is one entry of relatedImages.
type Image struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// PinBundle copies the bundle directory src to dst, with every container of the CSV's
// Deployments running operatorRef (the operator image by digest) and relatedImages
// listing it and the value of each RELATED_IMAGE_ variable, rewritten by pins
// (image reference -> reference by digest) where a digest is known.
func PinBundle(src, dst, operatorRef string, pins map[string]string) ([]Image, error) {
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return nil, err
	}
	path, err := csvPath(dst)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var csv map[string]any
	if err := yaml.Unmarshal(data, &csv); err != nil {
		return nil, err
	}
	related, err := pin(csv, operatorRef, pins)
	if err != nil {
		return nil, err
	}
	if data, err = yaml.Marshal(csv); err != nil {
		return nil, err
	}
	return related, os.WriteFile(path, data, 0o644)
}

func csvPath(bundle string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(bundle, "manifests", "*.clusterserviceversion.yaml"))
	if err != nil || len(matches) != 1 {
		return "", fmt.Errorf("%s: want one CSV in manifests/, found %d (%v)", bundle, len(matches), err)
	}
	return matches[0], nil
}

// pin rewrites the CSV's containers and returns the relatedImages it set.
func pin(csv map[string]any, operatorRef string, pins map[string]string) ([]Image, error) {
	related := map[string]string{"operator": operatorRef}
	containers, err := deploymentContainers(csv)
	if err != nil {
		return nil, err
	}
	for _, c := range containers {
		c["image"] = operatorRef
		env, _ := c["env"].([]any)
		for _, e := range env {
			e, _ := e.(map[string]any)
			name, _ := e["name"].(string)
			value, _ := e["value"].(string)
			if !strings.HasPrefix(name, RelatedImagePrefix) || value == "" {
				continue
			}
			if p, ok := pins[value]; ok {
				value = p
				e["value"] = p
			}
			related[strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, RelatedImagePrefix), "_", "-"))] = value
		}
	}
	images := make([]Image, 0, len(related))
	for name, image := range related {
		images = append(images, Image{Name: name, Image: image})
	}
	sort.Slice(images, func(i, j int) bool { return images[i].Name < images[j].Name })
	csv["spec"].(map[string]any)["relatedImages"] = images
	return images, nil
}

// deploymentContainers returns the containers of the CSV's install strategy.
func deploymentContainers(csv map[string]any) ([]map[string]any, error) {
	var out []map[string]any
	spec, _ := csv["spec"].(map[string]any)
	install, _ := spec["install"].(map[string]any)
	strategy, _ := install["spec"].(map[string]any)
	deployments, _ := strategy["deployments"].([]any)
	for _, d := range deployments {
		d, _ := d.(map[string]any)
		ds, _ := d["spec"].(map[string]any)
		tmpl, _ := ds["template"].(map[string]any)
		ps, _ := tmpl["spec"].(map[string]any)
		cs, _ := ps["containers"].([]any)
		for _, c := range cs {
			if c, ok := c.(map[string]any); ok {
				out = append(out, c)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the CSV's install strategy has no container")
	}
	return out, nil
}
