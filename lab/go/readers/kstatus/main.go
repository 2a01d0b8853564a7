// Command kstatus prints what sigs.k8s.io/cli-utils/pkg/kstatus reads from one
// object: the JSON object on stdin, {"status": ..., "message": ...} on stdout.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var obj map[string]interface{}
	// Integers must decode as int64, as they do when client-go reads an object.
	if err := utiljson.Unmarshal(raw, &obj); err != nil {
		fail(fmt.Errorf("stdin is not one JSON object: %w", err))
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		fail(err)
	}
	out, _ := json.Marshal(map[string]string{"status": res.Status.String(), "message": res.Message})
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(1)
}
