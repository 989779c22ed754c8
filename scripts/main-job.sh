# The main job's recipe, sourced (not run) by scripts/train.sh and bench/seeds.sh: `naani train`'s options for the seed
# model mnist-baseline on the full Fashion-MNIST (the seed and the output directory are each caller's), and whether the
# data is on this machine.
main_job_options=(--model mnist-baseline --data fashion-mnist --epochs 3 --batch-size 32)

fashion_mnist_present() {
  [ -d /usr/share/datasets/fashion-mnist ] || [ -d "${NAANI_HOME:-$HOME/.naani}/datasets/fashion-mnist" ]
}
