// arsim mobile bench, Android app. Unbuilt in the arsim repository (no Android SDK there):
// versions below are pinned but unverified; see README.md.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "arsim-bench"
include(":app")
