/* spec.c - releasing and querying the backend descriptions of spec.h. */
#include "spec.h"

#include <stdlib.h>
#include <string.h>

void vc_strv_free(char **v) {
  if (v == NULL)
    return;
  for (char **p = v; *p != NULL; p++)
    free(*p);
  free(v);
}

static void kv_free(struct vc_kv *kv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(kv[i].key);
    free(kv[i].value);
  }
  free(kv);
}

void vc_process_free(vc_process_t *p) {
  vc_strv_free(p->argv);
  vc_strv_free(p->env);
  free(p->cwd);
  free(p->user);
  vc_strv_free(p->groups);
  memset(p, 0, sizeof *p);
}

static void seccomp_free(struct vc_seccomp *sc) {
  if (sc == NULL)
    return;
  free(sc->default_action);
  vc_strv_free(sc->architectures);
  for (size_t i = 0; i < sc->n_rules; i++) {
    struct vc_seccomp_rule *r = &sc->rules[i];
    vc_strv_free(r->names);
    free(r->action);
    for (size_t j = 0; j < r->n_args; j++)
      free(r->args[j].op);
    free(r->args);
  }
  free(sc->rules);
  free(sc);
}

void vc_security_free(struct vc_security *s) {
  vc_strv_free(s->capabilities);
  vc_strv_free(s->cap_effective);
  vc_strv_free(s->cap_permitted);
  vc_strv_free(s->cap_inheritable);
  vc_strv_free(s->cap_ambient);
  vc_strv_free(s->masked_paths);
  vc_strv_free(s->readonly_paths);
  for (size_t i = 0; i < s->n_rlimits; i++)
    free(s->rlimits[i].type);
  free(s->rlimits);
  seccomp_free(s->seccomp);
  memset(s, 0, sizeof *s);
}

void vc_container_spec_free(vc_container_spec_t *c) {
  free(c->id);
  free(c->rootfs);
  vc_process_free(&c->process);
  free(c->namespaces_of);
  for (size_t i = 0; i < c->n_mounts; i++) {
    free(c->mounts[i].volume);
    free(c->mounts[i].source);
    free(c->mounts[i].path);
  }
  free(c->mounts);
  vc_security_free(&c->security);
  kv_free(c->annotations, c->n_annotations);
  kv_free(c->sysctls, c->n_sysctls);
  memset(c, 0, sizeof *c);
}

void vc_vm_spec_free(vc_vm_spec_t *vm) {
  free(vm->pod_id);
  free(vm->run_dir);
  free(vm->kernel);
  free(vm->initrd);
  free(vm->kernel_params);
  free(vm->share);
  free(vm->netns);
  vc_strv_free(vm->taps);
  free(vm->network);
  free(vm->incoming);
  free(vm->ram_file);
  for (size_t i = 0; i < vm->n_volumes; i++) {
    free(vm->volumes[i].tag);
    free(vm->volumes[i].host_path);
  }
  free(vm->volumes);
  kv_free(vm->annotations, vm->n_annotations);
  memset(vm, 0, sizeof *vm);
}

const char *vc_kv_get(const struct vc_kv *kv, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(kv[i].key, key) == 0)
      return kv[i].value;
  return NULL;
}
