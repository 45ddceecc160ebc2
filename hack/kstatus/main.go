// kstatus-check: computes the kstatus result (sigs.k8s.io/cli-utils pkg/kstatus/status) of
// Kubernetes objects, the way Flux and kubectl-based tools read them. Reads JSON on stdin: one
// object, a JSON array of objects, or a List ({"items": [...]}). Prints one JSON line per object:
// {"kind", "namespace", "name", "status", "message"}. Exits 1 on input it cannot read.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	kjson "k8s.io/apimachinery/pkg/util/json"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus-check:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	objects, err := parse(data)
	if err != nil {
		return err
	}
	encoder := json.NewEncoder(out)
	for _, object := range objects {
		u := &unstructured.Unstructured{Object: object}
		computed, err := status.Compute(u)
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		line := result{
			Kind:      u.GetKind(),
			Namespace: u.GetNamespace(),
			Name:      u.GetName(),
			Status:    computed.Status.String(),
			Message:   computed.Message,
		}
		if err := encoder.Encode(line); err != nil {
			return err
		}
	}
	return nil
}

func parse(data []byte) ([]map[string]interface{}, error) {
	var array []map[string]interface{}
	if err := kjson.Unmarshal(data, &array); err == nil {
		return array, nil
	}
	var object map[string]interface{}
	if err := kjson.Unmarshal(data, &object); err != nil {
		return nil, fmt.Errorf("stdin is not a JSON object, array or List: %w", err)
	}
	if items, ok := object["items"].([]interface{}); ok {
		list := make([]map[string]interface{}, 0, len(items))
		for i, item := range items {
			m, ok := item.(map[string]interface{})
			if !ok {
				return nil, fmt.Errorf("items[%d] is not an object", i)
			}
			list = append(list, m)
		}
		return list, nil
	}
	return []map[string]interface{}{object}, nil
}
