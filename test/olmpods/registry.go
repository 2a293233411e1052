package olmpods

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bitcoinops/bitcoin-operator/test/cluster"
)

// operator-sdk v1.33's registry pod: its container's name and port (fbcindex).
const (
	registryContainer = "registry-grpc"
	registryPort      = "50051"
)

// served is one registry pod being played.
type served struct {
	opm      *exec.Cmd
	listener net.Listener
}

func (s *served) stop() {
	_ = s.listener.Close()
	_ = s.opm.Process.Kill()
	_ = s.opm.Wait()
}

func (p *Player) playRegistryPods(ctx context.Context) {
	var pods corev1.PodList
	if err := p.Client.List(ctx, &pods); err != nil {
		return
	}
	var starting []*corev1.Pod
	live := map[types.UID]bool{}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !isRegistryPod(pod) || pod.DeletionTimestamp != nil || pod.Status.PodIP == "" {
			continue
		}
		live[pod.UID] = true
		if p.served[pod.UID] == nil && p.Err("pod/"+pod.Name) == nil {
			starting = append(starting, pod)
		}
	}
	// Pods that are gone take their server with them first: kwok hands a freed IP to
	// the next pod at once, and a server left on it would answer for the new pod
	// while its image is still being pulled (OLM saw a catalog READY that way).
	for uid, s := range p.served {
		if !live[uid] {
			s.stop()
			delete(p.served, uid)
		}
	}
	for _, pod := range starting {
		s, err := p.serve(ctx, pod)
		if err != nil {
			p.fail("pod/"+pod.Name, err)
			continue
		}
		p.served[pod.UID] = s
	}
}

func isRegistryPod(pod *corev1.Pod) bool {
	return isSDKRegistryPod(pod) || isCatalogPod(pod)
}

func isSDKRegistryPod(pod *corev1.Pod) bool {
	return len(pod.Spec.Containers) == 1 && pod.Spec.Containers[0].Name == registryContainer
}

// serve plays a registry pod. OLM's catalog pod runs its image (serveCatalogImage).
// For operator-sdk's, it writes the catalog of the pod's ConfigMaps as its init
// container would (gunzipped, one directory per ConfigMap), has opm validate it,
// serves it, and forwards the pod's IP:50051 to opm.
func (p *Player) serve(ctx context.Context, pod *corev1.Pod) (*served, error) {
	if isCatalogPod(pod) {
		return p.serveCatalogImage(ctx, pod)
	}
	dir, err := p.scratch("registry-" + pod.Name)
	if err != nil {
		return nil, err
	}
	catalog := filepath.Join(dir, "catalog")
	if err := p.writeCatalog(ctx, pod, catalog); err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.catalogs == nil {
		p.catalogs = map[string]string{}
	}
	p.catalogs[pod.Name] = catalog
	p.mu.Unlock()
	if out, err := exec.CommandContext(ctx, p.OPM, "validate", catalog).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("opm validate of the catalog operator-sdk wrote: %w: %s", err, out)
	}
	return p.start(p.OPM, []string{"serve", catalog}, nil, dir, net.JoinHostPort(pod.Status.PodIP, registryPort))
}

func (p *Player) writeCatalog(ctx context.Context, pod *corev1.Pod, catalog string) error {
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		cm := &corev1.ConfigMap{}
		if err := p.Client.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: v.ConfigMap.Name}, cm); err != nil {
			return err
		}
		for key, data := range cm.BinaryData {
			if err := writeGunzipped(filepath.Join(catalog, cm.Name, strings.TrimSuffix(key, ".gz")), data); err != nil {
				return fmt.Errorf("ConfigMap %s key %s: %w", cm.Name, key, err)
			}
		}
	}
	return nil
}

func writeGunzipped(path string, data []byte) error {
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, plain, 0o644)
}

// start runs `opm serve` (bin with args, which say what to serve) on a free port and
// forwards addr to it. opm serve takes a port only and listens on every address; the
// pod's own IP:50051 must be reached, and two registry pods at once must not share a
// port. Its pprof and termination log move out of the way too.
func (p *Player) start(bin string, args, env []string, dir, addr string) (*served, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	pprof, err := freePort()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "opm.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append(args, "--port", port,
		"--pprof-addr", "127.0.0.1:"+pprof, "--termination-log", filepath.Join(dir, "termination.log"))...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cluster.Spawn(cmd); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	go forward(l, "127.0.0.1:"+port)
	fmt.Fprintf(p.Log, "olmpods: serving %v on %s (opm on port %s)\n", args, addr, port)
	return &served{opm: cmd, listener: l}, nil
}

func (p *Player) stopAll() {
	for _, s := range p.served {
		s.stop()
	}
}

// forward copies every connection to l to and from target until l is closed.
func forward(l net.Listener, target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			t, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer t.Close()
			go func() { _, _ = io.Copy(t, c) }()
			_, _ = io.Copy(c, t)
		}()
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}
