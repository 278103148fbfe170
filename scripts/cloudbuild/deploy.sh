#!/usr/bin/env bash
# The Terraform steps of cloudbuild.yaml: deploy.sh init | publish | plan | apply.
# publish and apply act only on the deploy branch (BRANCH_NAME = DEPLOY_BRANCH); elsewhere they
# say so and succeed, so every branch is tested and planned but only one is deployed.
set -euo pipefail
. "$(dirname "$0")/env.sh"

tf() { terraform -chdir=terraform "$@"; }

on_deploy_branch() {
	[[ -n ${DEPLOY_BRANCH:-} && ${BRANCH_NAME:-} == "$DEPLOY_BRANCH" ]]
}

# The variables of every plan: the project's, and the model's from make model-tfvars.
vars() {
	vars=(-var-file=../build/model.tfvars.json
		-var "project_id=${PROJECT_ID:?}" -var "region=${REGION:?}"
		-var "name_prefix=${NAME_PREFIX:?}" -var "build_id=${BUILD_NAME:-cloudbuild}")
}

case ${1:-} in
init)
	: "${STATE_BUCKET:?set the _STATE_BUCKET substitution (the state_bucket output of terraform/bootstrap)}"
	tf init -input=false -backend-config="bucket=$STATE_BUCKET"
	;;
publish)
	if ! on_deploy_branch; then
		echo "publish: ${BRANCH_NAME:-this build} is not the deploy branch (${DEPLOY_BRANCH:-unset}); nothing is published"
		exit 0
	fi
	# The models bucket must exist before the bundle goes in, and the bundle must be in before the
	# functions are pointed at it: create (or confirm) the bucket alone first. A no-op after the
	# first deployment.
	vars
	tf apply -input=false -auto-approve "${vars[@]}" -target=google_storage_bucket.models
	go run ./functions/cmd/text2brain model publish --bucket "$(tf output -raw models_bucket)"
	;;
plan)
	vars
	tf plan -input=false "${vars[@]}" -out=tfplan
	;;
apply)
	if ! on_deploy_branch; then
		echo "apply: ${BRANCH_NAME:-this build} is not the deploy branch (${DEPLOY_BRANCH:-unset}); the plan is not applied"
		exit 0
	fi
	tf apply -input=false tfplan
	tf output site_url
	;;
*)
	echo "usage: deploy.sh init|publish|plan|apply" >&2
	exit 2
	;;
esac
