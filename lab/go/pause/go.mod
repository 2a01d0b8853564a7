// The sandbox ("pause") process of the real-kubelet harness's Pods: containerd
// needs an image for it and no registry is reachable, so it is built here.
module livepatch.io/operator/lab/pause

go 1.26.0
