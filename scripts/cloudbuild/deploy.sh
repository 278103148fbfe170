#!/usr/bin/env bash
# The Terraform steps of cloudbuild.yaml: deploy.sh init | publish | plan | apply.
# They act only on the deploy branch (BRANCH_NAME = DEPLOY_BRANCH), whose trigger builds as the
# deployer; elsewhere they say so and succeed: other branches are tested, as an account that
# cannot read the state or change the deployment (terraform/bootstrap).
set -euo pipefail
. "$(dirname "$0")/env.sh"

tf() { terraform -chdir=terraform "$@"; }

# Builds of the deploy branch are not serialised: wait for another build's state lock.
lock=-lock-timeout=15m

on_deploy_branch() {
	[[ -n ${DEPLOY_BRANCH:-} && ${BRANCH_NAME:-} == "$DEPLOY_BRANCH" ]]
}

# The variables of every plan: the project's, and the model's from make model-tfvars.
vars() {
	vars=(-var-file=../build/model.tfvars.json
		-var "project_id=${PROJECT_ID:?Cloud Build sets PROJECT_ID; by hand, export it}"
		-var "region=${REGION:?set the _REGION substitution}"
		-var "name_prefix=${NAME_PREFIX:?set the _NAME_PREFIX substitution}")
}

skip() {
	echo "$1: ${BRANCH_NAME:-this build} is not the deploy branch (${DEPLOY_BRANCH:-unset}); nothing to do"
	exit 0
}

case ${1:-} in
init | publish | plan | apply)
	on_deploy_branch || skip "$1"
	;;
esac

case ${1:-} in
init)
	: "${STATE_BUCKET:?set the _STATE_BUCKET substitution (the state_bucket output of terraform/bootstrap)}"
	tf init -input=false -backend-config="bucket=$STATE_BUCKET"
	;;
publish)
	# The models bucket must exist before the bundle goes in, and the bundle must be in before the
	# functions are pointed at it: create (or confirm) the bucket alone first. A no-op after the
	# first deployment.
	vars
	tf apply -input=false "$lock" -auto-approve "${vars[@]}" -target=google_storage_bucket.models
	go run ./functions/cmd/text2brain model publish --bucket "$(tf output -raw models_bucket)"
	;;
plan)
	vars
	tf plan -input=false "$lock" "${vars[@]}" -out=tfplan
	;;
apply)
	tf apply -input=false "$lock" tfplan
	tf output site_url
	;;
*)
	echo "usage: deploy.sh init|publish|plan|apply" >&2
	exit 2
	;;
esac
