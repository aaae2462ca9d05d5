// compose-check loads a Compose file with compose-go (the loader Docker Compose itself
// uses: schema validation, interpolation, normalization, consistency checks), without a
// Docker engine, then checks mailroom's rules for it:
//
//   - every image is pinned to a version tag (not `latest`, not untagged) or a digest;
//     a service built from the Dockerfile (build:) is exempt, its image is built locally;
//   - every long-running service has a healthcheck that is not disabled;
//   - every depends_on waits on a condition: service_healthy (the dependency has a
//     healthcheck) or service_completed_successfully (the dependency is a one-shot job),
//     never service_started, which waits for nothing;
//   - a one-shot job (a service others wait on with service_completed_successfully) is
//     waited on that way by every dependent and does not restart always/unless-stopped;
//   - a service that runs several replicas (deploy.replicas > 1) publishes no fixed host
//     port: the second container could not bind it.
//
// Every profile is enabled (as `docker compose --profile '*'`), so services of a profile
// (the scaled workers) are checked too.
//
// It prints a JSON summary (services with image, job, healthcheck, depends_on, memory
// limit; the violations) on stdout and exits 1 when the file does not load or breaks a rule.
//
// The file reads its secrets from the environment (${VAR:?message}), so it only loads with
// values for them: --env-file names a file to take them from, as `docker compose
// --env-file` does (the test passes .env.example's placeholders). Nothing else is read: not
// this process's environment, not a .env beside the file.
//
//	compose-check [--env-file .env.example]... docker-compose.yml
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

type service struct {
	Image       string            `json:"image"`
	Build       bool              `json:"build"`
	Job         bool              `json:"job"`
	Healthcheck []string          `json:"healthcheck,omitempty"`
	DependsOn   map[string]string `json:"dependsOn,omitempty"`
	// MemLimit is the container's memory limit in bytes (mem_limit, or
	// deploy.resources.limits.memory, which Compose also applies without swarm); 0 for none.
	MemLimit int64 `json:"memLimit"`
	// Profiles the service belongs to (none: it always runs); Replicas is deploy.replicas (1
	// when unset); HostPorts the host ports it publishes ("127.0.0.1:8080->8080/tcp").
	Profiles  []string `json:"profiles,omitempty"`
	Replicas  int      `json:"replicas"`
	HostPorts []string `json:"hostPorts,omitempty"`
}

type report struct {
	File       string             `json:"file"`
	Services   map[string]service `json:"services"`
	Violations []string           `json:"violations"`
}

func main() {
	var envFiles []string
	args := os.Args[1:]
	for len(args) > 1 && args[0] == "--env-file" {
		envFiles = append(envFiles, args[1])
		args = args[2:]
	}
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(os.Stderr, "usage: compose-check [--env-file FILE]... <compose file>")
		os.Exit(2)
	}
	file, err := filepath.Abs(args[0])
	if err != nil {
		fail(err)
	}
	project, err := load(file, envFiles)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s does not load: %v\n", args[0], err)
		os.Exit(1)
	}
	r := check(project)
	r.File = args[0]
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
	if len(r.Violations) > 0 {
		for _, v := range r.Violations {
			fmt.Fprintln(os.Stderr, v)
		}
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

// load reads the file as `docker compose --env-file ... config` would, with no environment
// from this process: what the file and the named env files say is what is checked.
func load(file string, envFiles []string) (*types.Project, error) {
	for i, f := range envFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		envFiles[i] = abs
	}
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		// Exactly these files: an empty list would make compose-go look for a .env.
		cli.WithEnvFiles(append([]string{os.DevNull}, envFiles...)...),
		cli.WithDotEnv,
		cli.WithName("mailroom"),
		// All profiles: a service only `--profile scale` starts is checked as well.
		cli.WithProfiles([]string{"*"}),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// pinned reports whether an image reference names a version tag or a digest.
func pinned(image string) (bool, string) {
	if image == "" {
		return false, "no image"
	}
	if strings.Contains(image, "@sha256:") {
		return true, ""
	}
	name := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 {
		return false, "no tag (that means latest)"
	}
	tag := name[i+1:]
	if tag == "latest" || !strings.ContainsAny(tag, "0123456789") {
		return false, fmt.Sprintf("tag %q is not a version", tag)
	}
	return true, ""
}

func check(p *types.Project) report {
	r := report{Services: map[string]service{}, Violations: []string{}}
	violate := func(format string, args ...any) { r.Violations = append(r.Violations, fmt.Sprintf(format, args...)) }

	// Jobs: services some other service waits on to complete.
	jobs := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				jobs[dep] = true
			}
		}
	}

	names := make([]string, 0, len(p.Services))
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := p.Services[name]
		out := service{Image: s.Image, Build: s.Build != nil, Job: jobs[name], DependsOn: map[string]string{}}
		out.MemLimit = int64(s.MemLimit)
		if s.Deploy != nil && s.Deploy.Resources.Limits != nil && s.Deploy.Resources.Limits.MemoryBytes > 0 {
			out.MemLimit = int64(s.Deploy.Resources.Limits.MemoryBytes)
		}
		out.Profiles = s.Profiles
		out.Replicas = 1
		if s.Deploy != nil && s.Deploy.Replicas != nil {
			out.Replicas = *s.Deploy.Replicas
		}
		for _, p := range s.Ports {
			if p.Published == "" {
				continue // an ephemeral host port: each replica gets its own
			}
			host := p.Published
			if p.HostIP != "" {
				host = p.HostIP + ":" + host
			}
			out.HostPorts = append(out.HostPorts, fmt.Sprintf("%s->%d/%s", host, p.Target, p.Protocol))
			if out.Replicas > 1 && !strings.Contains(p.Published, "-") {
				violate("%s: %d replicas cannot all publish host port %s (drop the published port, or publish a range)", name, out.Replicas, host)
			}
		}
		if s.Build == nil {
			if ok, why := pinned(s.Image); !ok {
				violate("%s: image %q is not pinned to a version: %s", name, s.Image, why)
			}
		}
		hasHealthcheck := s.HealthCheck != nil && !s.HealthCheck.Disable && len(s.HealthCheck.Test) > 0 && s.HealthCheck.Test[0] != "NONE"
		if hasHealthcheck {
			out.Healthcheck = s.HealthCheck.Test
		}
		if jobs[name] {
			if s.Restart == types.RestartPolicyAlways || s.Restart == types.RestartPolicyUnlessStopped {
				violate("%s: a one-shot job (waited on with service_completed_successfully) must not restart %s", name, s.Restart)
			}
		} else if !hasHealthcheck {
			violate("%s: no healthcheck (every long-running service needs one)", name)
		}
		for dep, d := range s.DependsOn {
			out.DependsOn[dep] = d.Condition
			target, known := p.Services[dep]
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if known && (target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0) {
					violate("%s: depends_on %s with service_healthy, but %s has no healthcheck", name, dep, dep)
				}
				if jobs[dep] {
					violate("%s: depends_on %s with service_healthy, but other services wait for %s to complete; use service_completed_successfully", name, dep, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
			default:
				violate("%s: depends_on %s with condition %s waits for nothing; use service_healthy or service_completed_successfully", name, dep, d.Condition)
			}
		}
		r.Services[name] = out
	}
	return r
}
